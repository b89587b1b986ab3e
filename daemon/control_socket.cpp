#include "daemon/control_socket.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstring>

namespace crosvisor::daemon {

ControlSocket::~ControlSocket() {
  // `path` is set once the socket file is ours (bound while we held the lock).
  if (lock && !path.empty())
    ::unlink(path.c_str());
}

Expected<ControlSocket> open_control_socket(const std::filesystem::path& path, bool shared) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.native().size() >= sizeof(address.sun_path))
    return make_error(ErrorKind::io, path.string() + ": socket path too long");
  std::memcpy(address.sun_path, path.c_str(), path.native().size() + 1);

  const auto dir = path.parent_path();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return make_error(ErrorKind::io, "create " + dir.string() + ": " + ec.message());
  // Someone else's directory (made there first, to catch our clients' fds) is never served from.
  struct stat info {};
  if (::lstat(dir.c_str(), &info) != 0)
    return std::unexpected(errno_error(ErrorKind::io, "stat " + dir.string(), errno));
  if (!S_ISDIR(info.st_mode) || info.st_uid != ::geteuid()) {
    return make_error(ErrorKind::permission,
                      dir.string() + " is not a directory of this user (uid " +
                          std::to_string(::geteuid()) + "): refusing to serve a socket there");
  }
  if (::chmod(dir.c_str(), shared ? 0711 : 0700) != 0)
    return std::unexpected(errno_error(ErrorKind::io, "chmod " + dir.string(), errno));

  ControlSocket socket;
  const auto lock_path = path.string() + ".lock";
  socket.lock.reset(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!socket.lock)
    return std::unexpected(errno_error(ErrorKind::io, "open " + lock_path, errno));
  if (::flock(socket.lock.get(), LOCK_EX | LOCK_NB) != 0) {
    return make_error(ErrorKind::conflict, path.string() +
                                               ": another crosvisord is serving this socket (" +
                                               lock_path + " is locked)");
  }
  // We hold the lock: a socket file here is a dead daemon's.
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    return std::unexpected(errno_error(ErrorKind::io, "remove stale " + path.string(), errno));
  socket.listener.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!socket.listener)
    return std::unexpected(errno_error(ErrorKind::io, "socket", errno));
  // The socket file is created with the umask; narrow it before anyone can connect.
  const mode_t old_mask = ::umask(0177);
  const int bound =
      ::bind(socket.listener.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address));
  ::umask(old_mask);
  if (bound != 0)
    return std::unexpected(errno_error(ErrorKind::io, "bind " + path.string(), errno));
  socket.path = path;
  if (::chmod(path.c_str(), shared ? 0666 : 0600) != 0)
    return std::unexpected(errno_error(ErrorKind::io, "chmod " + path.string(), errno));
  if (::listen(socket.listener.get(), 128) != 0)
    return std::unexpected(errno_error(ErrorKind::io, "listen " + path.string(), errno));
  return socket;
}

}  // namespace crosvisor::daemon
