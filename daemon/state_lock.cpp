#include "daemon/state_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <string>

namespace crosvisor::daemon {

Expected<UniqueFd> lock_state_dir(const std::filesystem::path& state_dir,
                                  const std::filesystem::path& socket) {
  std::error_code ec;
  std::filesystem::create_directories(state_dir, ec);
  if (ec)
    return make_error(ErrorKind::io, "create " + state_dir.string() + ": " + ec.message());
  const auto path = state_dir / "crosvisord.lock";
  UniqueFd lock(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!lock)
    return std::unexpected(errno_error(ErrorKind::io, "open " + path.string(), errno));
  if (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK)
      return std::unexpected(errno_error(ErrorKind::io, "lock " + path.string(), errno));
    // Who holds it: the holder wrote its socket there.
    char said[512] = {};
    const ssize_t n = ::pread(lock.get(), said, sizeof(said) - 1, 0);
    std::string holder(said, n > 0 ? static_cast<std::size_t>(n) : 0);
    holder = holder.substr(0, holder.find('\n'));
    return make_error(ErrorKind::conflict,
                      state_dir.string() + " is the state directory of another crosvisord" +
                          (holder.empty() ? std::string() : " (serving " + holder + ")") +
                          ": one daemon per state directory; give this one its own --state-dir");
  }
  const std::string ours = socket.string() + "\n";
  if (::ftruncate(lock.get(), 0) != 0 ||
      ::pwrite(lock.get(), ours.data(), ours.size(), 0) != static_cast<ssize_t>(ours.size()))
    return std::unexpected(errno_error(ErrorKind::io, "write " + path.string(), errno));
  return lock;
}

}  // namespace crosvisor::daemon
