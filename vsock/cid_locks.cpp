#include "vsock/cid_locks.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <fstream>

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

std::optional<std::uint32_t> load_last_cid(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::uint64_t cid = 0;
  if (in >> cid && cid <= 0xfffffffeu)
    return static_cast<std::uint32_t>(cid);
  return std::nullopt;
}

Expected<void> save_last_cid(const std::filesystem::path& file, std::uint32_t cid) {
  const std::string temp = file.string() + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream out(temp, std::ios::trunc);
    out << cid << '\n';
    if (!out)
      return std::unexpected(errno_error(ErrorKind::io, "write " + temp, errno));
  }
  if (::rename(temp.c_str(), file.c_str()) != 0) {
    return std::unexpected(errno_error(ErrorKind::io, "rename " + temp, errno));
  }
  return {};
}

}  // namespace crosvisor::vsock
