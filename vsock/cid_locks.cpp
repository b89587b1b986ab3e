#include "vsock/cid_locks.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>

namespace crosvisor::vsock {

std::filesystem::path CidLocks::lock_path(std::uint32_t cid) const {
  return dir_ / ("cid-" + std::to_string(cid) + ".lock");
}

Expected<void> CidLocks::prepare() const {
  std::error_code ec;
  if (std::filesystem::create_directories(dir_, ec)) {
    std::filesystem::permissions(dir_, std::filesystem::perms::owner_all, ec);
  }
  if (ec)
    return make_error(ErrorKind::io, "create " + dir_.string() + ": " + ec.message());
  return {};
}

Expected<std::optional<UniqueFd>> CidLocks::try_lock(std::uint32_t cid) const {
  // The lock files stay in place after use: removing one while another process has it open but
  // not yet locked would let two processes lock two different files for the same CID.
  const auto path = lock_path(cid);
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd)
    return std::unexpected(errno_error(ErrorKind::io, "open " + path.string(), errno));
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK)
      return std::optional<UniqueFd>();
    return std::unexpected(errno_error(ErrorKind::io, "flock " + path.string(), errno));
  }
  return std::optional<UniqueFd>(std::move(fd));
}

void CidLocks::unlock(std::uint32_t, UniqueFd lock) const {
  lock.reset();
}

Expected<LastCidFile> LastCidFile::open(const std::filesystem::path& file) {
  UniqueFd fd(::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd)
    return std::unexpected(errno_error(ErrorKind::io, "open " + file.string(), errno));
  return LastCidFile(std::move(fd), file);
}

std::optional<std::uint32_t> LastCidFile::load() const {
  char text[32] = {};
  const ssize_t n = ::pread(fd_.get(), text, sizeof(text) - 1, 0);
  if (n <= 0)
    return std::nullopt;
  std::uint64_t cid = 0;
  const char* end = text + n;
  const char* first = text;
  while (first < end && *first == ' ')
    ++first;
  const auto [stop, error] = std::from_chars(first, end, cid);
  if (error != std::errc() || stop == first || cid > 0xfffffffeu)
    return std::nullopt;
  return static_cast<std::uint32_t>(cid);
}

Expected<void> LastCidFile::save(std::uint32_t cid) {
  // Fixed width: a shorter number never leaves the tail of a longer one behind.
  char record[12];
  std::snprintf(record, sizeof(record), "%10u\n", cid);
  if (::pwrite(fd_.get(), record, 11, 0) != 11)
    return std::unexpected(errno_error(ErrorKind::io, "write " + path_.string(), errno));
  return {};
}

}  // namespace crosvisor::vsock
