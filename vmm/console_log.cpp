#include "vmm/console_log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>

namespace crosvisor::vmm {
namespace {

UniqueFd open_log_file(const std::filesystem::path& path, int extra_flags,
                       std::optional<uid_t> owner) {
  UniqueFd fd(::open(path.c_str(),
                     O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | extra_flags, 0600));
  // A root daemon gives the file to the VM's owner, who may then read it without the daemon.
  if (fd && owner && geteuid() == 0 && *owner != 0 &&
      ::fchown(fd.get(), *owner, static_cast<gid_t>(-1)) != 0) {
    // The file stays the daemon's: the owner still reads it through `vm logs`.
  }
  return fd;
}

std::string utc_now() {
  char when[32];
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  std::strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return when;
}

}  // namespace

std::string boot_marker(std::string_view vm_name) {
  return "--- crosvisor: " + std::string(vm_name) + " booted at " + utc_now() + " ---\n";
}

std::string takeover_marker(std::string_view vm_name) {
  return "--- crosvisor: " + std::string(vm_name) + " taken over by a new crosvisord at " +
         utc_now() + " ---\n";
}

ConsoleLog::ConsoleLog(std::filesystem::path path, UniqueFd fd, std::uint64_t size,
                       std::uint64_t max_bytes, std::optional<uid_t> owner)
    : path_(std::move(path)),
      fd_(std::move(fd)),
      size_(size),
      max_bytes_(max_bytes),
      owner_(owner) {}

Expected<ConsoleLog> ConsoleLog::open(const std::filesystem::path& path, std::uint64_t max_bytes,
                                      std::optional<uid_t> owner, std::string_view marker) {
  const auto dir = path.parent_path();
  std::error_code ec;
  const bool parent_existed = std::filesystem::exists(dir.parent_path(), ec);
  if (std::filesystem::create_directories(dir, ec)) {
    ::chmod(dir.c_str(), 0711);
    if (!parent_existed)
      ::chmod(dir.parent_path().c_str(), 0711);
  }
  if (ec)
    return make_error(ErrorKind::io, "create " + dir.string() + ": " + ec.message());
  UniqueFd fd = open_log_file(path, 0, owner);
  if (!fd)
    return std::unexpected(errno_error(ErrorKind::io, "console log " + path.string(), errno));
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0 || !S_ISREG(info.st_mode))
    return make_error(ErrorKind::io, "console log " + path.string() + ": not a regular file");
  ConsoleLog log(path, std::move(fd), static_cast<std::uint64_t>(info.st_size), max_bytes, owner);
  log.write(marker);
  return log;
}

void ConsoleLog::write(std::string_view bytes) {
  if (!fd_)
    return;
  if (max_bytes_ > 0 && size_ > 0 && size_ + bytes.size() > max_bytes_)
    rotate();
  if (!fd_)
    return;
  if (::write(fd_.get(), bytes.data(), bytes.size()) < 0) {
    fd_.reset();
    return;
  }
  size_ += bytes.size();
}

void ConsoleLog::rotate() {
  // One older generation is kept: at most twice the cap per VM name.
  const auto older = path_.string() + ".1";
  ::rename(path_.c_str(), older.c_str());
  fd_ = open_log_file(path_, O_TRUNC, owner_);
  size_ = 0;
}

}  // namespace crosvisor::vmm
