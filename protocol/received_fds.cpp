#include "protocol/received_fds.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include "protocol/field_reader.hpp"

namespace crosvisor::protocol {

using json = nlohmann::json;

Expected<std::filesystem::path> FdTaker::take(const json& reference, const std::string& where,
                                              bool block_device_ok, bool writable, VmSpec& spec) {
  FieldReader reader(reference, where);
  if (auto only = reader.only({"fd", "path"}); !only)
    return std::unexpected(only.error());
  // How the client names the file: for messages and `vm info`, never opened.
  std::string shown;
  if (reader.has("path")) {
    auto path = reader.string("path");
    if (!path)
      return std::unexpected(path.error());
    if (path->size() > 4096)
      return std::unexpected(bad(where + ".path", "longer than 4096 bytes"));
    shown = *path;
  }
  if (!reader.has("fd"))
    return std::unexpected(bad(where + ".fd", "missing"));
  auto index = reader.integer("fd", 0, static_cast<std::int64_t>(kMaxIndex));
  if (!index)
    return std::unexpected(index.error());
  const auto i = static_cast<std::size_t>(*index);
  if (i >= slots_.size()) {
    return std::unexpected(bad(where + ".fd", "index " + std::to_string(i) + ", but only " +
                                                  std::to_string(slots_.size()) +
                                                  " fds came with the message"));
  }
  Slot& slot = slots_[i];
  if (slot.uses > 0 && (!shared_ || writable || slot.writable)) {
    return std::unexpected(bad(where + ".fd", "fd " + std::to_string(i) + " is used twice" +
                                                  (shared_ ? " and written" : "")));
  }
  if (slot.uses == 0) {
    // An O_PATH fd grants no access of its own: a VMM reopening /proc/self/fd/N would get the
    // daemon's rights to the file instead of the client's.
    const int flags = fcntl(slot.fd.get(), F_GETFL);
    if (flags < 0 || (flags & O_PATH) != 0)
      return std::unexpected(bad(where + ".fd", "fd " + std::to_string(i) +
                                                    " is an O_PATH fd: open the file for reading"));
    struct stat info {};
    if (fstat(slot.fd.get(), &info) != 0)
      return std::unexpected(errno_error(ErrorKind::io, where + ".fd", errno));
    const bool regular = S_ISREG(info.st_mode);
    const bool block = S_ISBLK(info.st_mode);
    if (!regular && !(block && block_device_ok)) {
      const char* kind = S_ISDIR(info.st_mode)    ? "a directory"
                         : S_ISSOCK(info.st_mode) ? "a socket"
                         : S_ISFIFO(info.st_mode) ? "a pipe"
                         : S_ISCHR(info.st_mode)  ? "a character device"
                                                  : "not a file";
      return std::unexpected(bad(
          where + ".fd",
          "fd " + std::to_string(i) + " is " + kind +
              (block_device_ok ? ", not a regular file or block device" : ", not a regular file")));
    }
    VmSpec owner;  // hand_over makes the closing owner; every spec naming it shares it
    owner.hand_over(slot.fd.release());
    slot.owner = owner.handed_fds.front();
  }
  const int mode = fcntl(slot.fd.valid() ? slot.fd.get() : *slot.owner, F_GETFL) & O_ACCMODE;
  if (writable && mode != O_RDWR) {
    return std::unexpected(bad(where + ".fd", "fd " + std::to_string(i) +
                                                  " is not open for reading and writing, and "
                                                  "this disk is writable"));
  }
  if (mode == O_WRONLY)
    return std::unexpected(bad(where + ".fd", "fd " + std::to_string(i) + " cannot be read"));
  ++slot.uses;
  slot.writable = slot.writable || writable;
  spec.handed_fds.push_back(slot.owner);
  const std::string handed = "/proc/self/fd/" + std::to_string(*slot.owner);
  if (!shown.empty())
    spec.shown_paths[handed] = shown;
  return handed;
}

}  // namespace crosvisor::protocol
