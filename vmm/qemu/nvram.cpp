#include "vmm/qemu/nvram.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

namespace crosvisor::vmm::qemu {
namespace {

Expected<std::vector<char>> read_template(int fd) {
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode))
    return make_error(ErrorKind::invalid_image, "nvram_template: not a regular file");
  if (info.st_size == 0 || info.st_size > (64 << 20))
    return make_error(ErrorKind::invalid_image,
                      "nvram_template: " + std::to_string(info.st_size) +
                          " bytes is no UEFI variable store");
  std::vector<char> bytes(static_cast<std::size_t>(info.st_size));
  if (::pread(fd, bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size()))
    return std::unexpected(errno_error(ErrorKind::io, "read nvram_template", errno));
  return bytes;
}

}  // namespace

Expected<UniqueFd> open_nvram(const std::filesystem::path& path, int template_fd,
                              std::optional<uid_t> owner) {
  auto initial = read_template(template_fd);
  if (!initial)
    return std::unexpected(initial.error());
  std::error_code ec;
  if (std::filesystem::create_directories(path.parent_path(), ec))
    ::chmod(path.parent_path().c_str(), 0711);
  if (ec)
    return make_error(ErrorKind::io, "create " + path.parent_path().string() + ": " + ec.message());
  UniqueFd store(::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
  struct stat info {};
  if (store && ::fstat(store.get(), &info) == 0 && S_ISREG(info.st_mode) &&
      static_cast<std::size_t>(info.st_size) == initial->size())
    return store;
  // None yet, or not one for this firmware: a fresh copy, put in place whole.
  const auto fresh = path.string() + ".new";
  UniqueFd copy(::open(fresh.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!copy)
    return std::unexpected(errno_error(ErrorKind::io, "UEFI variable store " + fresh, errno));
  if (::write(copy.get(), initial->data(), initial->size()) !=
          static_cast<ssize_t>(initial->size()) ||
      ::fsync(copy.get()) != 0 || ::rename(fresh.c_str(), path.c_str()) != 0) {
    const int saved = errno;
    ::unlink(fresh.c_str());
    return std::unexpected(errno_error(ErrorKind::io, "UEFI variable store " + path.string(), saved));
  }
  if (owner && ::geteuid() == 0 && *owner != 0 &&
      ::fchown(copy.get(), *owner, static_cast<gid_t>(-1)) != 0) {
    // It stays the daemon's.
  }
  return copy;
}

}  // namespace crosvisor::vmm::qemu
