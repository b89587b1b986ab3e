#include "vsock/channel.hpp"

#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace crosvisor::vsock {
namespace {

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

// Waits for `events` on `fd` until `deadline`; false on timeout.
bool wait_for(int fd, short events, Clock::time_point deadline) {
  pollfd poller{fd, events, 0};
  for (;;) {
    const int n = poll(&poller, 1, remaining_ms(deadline));
    if (n > 0)
      return true;
    if (n == 0 || errno != EINTR)
      return false;
  }
}

Expected<sockaddr_un> unix_address(const std::filesystem::path& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.native().size() >= sizeof(address.sun_path)) {
    return make_error(ErrorKind::io, path.string() + ": socket path too long");
  }
  std::memcpy(address.sun_path, path.c_str(), path.native().size() + 1);
  return address;
}

}  // namespace

Expected<UniqueFd> hybrid_connect(const std::filesystem::path& uds_path, std::uint32_t port,
                                  std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  const std::string what = "hybrid vsock " + uds_path.string() + " port " + std::to_string(port);
  auto address = unix_address(uds_path);
  if (!address)
    return std::unexpected(address.error());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd)
    return std::unexpected(errno_error(ErrorKind::io, what + ": socket", errno));
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&*address), sizeof(*address)) != 0) {
    return std::unexpected(errno_error(ErrorKind::io, what + ": connect", errno));
  }
  const std::string request = "CONNECT " + std::to_string(port) + "\n";
  if (::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    return std::unexpected(errno_error(ErrorKind::io, what + ": send", errno));
  }
  // Read the answer one byte at a time: whatever follows the newline belongs to the stream.
  std::string reply;
  while (reply.size() < 64) {
    if (!wait_for(fd.get(), POLLIN, deadline)) {
      return make_error(ErrorKind::protocol,
                        what + ": no answer within " + std::to_string(timeout.count()) + " ms");
    }
    char c;
    const ssize_t n = ::recv(fd.get(), &c, 1, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return make_error(ErrorKind::protocol, what + ": refused (the VMM closed the connection)");
    if (c == '\n')
      break;
    reply.push_back(c);
  }
  const bool ok = reply.size() > 3 && reply.compare(0, 3, "OK ") == 0 &&
                  reply.find_first_not_of("0123456789", 3) == std::string::npos;
  if (!ok)
    return make_error(ErrorKind::protocol, what + ": unexpected answer \"" + reply + "\"");
  return fd;
}

std::filesystem::path hybrid_listen_path(const std::filesystem::path& uds_path,
                                         std::uint32_t port) {
  return uds_path.string() + "_" + std::to_string(port);
}

Expected<UniqueFd> hybrid_listen(const std::filesystem::path& uds_path, std::uint32_t port) {
  const auto path = hybrid_listen_path(uds_path, port);
  auto address = unix_address(path);
  if (!address)
    return std::unexpected(address.error());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd)
    return std::unexpected(errno_error(ErrorKind::io, "socket", errno));
  ::unlink(path.c_str());
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&*address), sizeof(*address)) != 0 ||
      ::listen(fd.get(), 16) != 0) {
    return std::unexpected(errno_error(ErrorKind::io, "listen " + path.string(), errno));
  }
  return fd;
}

Expected<UniqueFd> vsock_connect(std::uint32_t cid, std::uint32_t port,
                                 std::chrono::milliseconds timeout) {
  const std::string what = "vsock " + std::to_string(cid) + ":" + std::to_string(port);
  if (cid <= VMADDR_CID_HOST) {
    return make_error(ErrorKind::invalid_config, what + ": CIDs 0, 1 and 2 are not guests");
  }
  UniqueFd fd(::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd)
    return std::unexpected(errno_error(ErrorKind::io, what + ": socket", errno));
  sockaddr_vm address{};
  address.svm_family = AF_VSOCK;
  address.svm_cid = cid;
  address.svm_port = port;
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    if (errno != EINPROGRESS)
      return std::unexpected(errno_error(ErrorKind::io, what + ": connect", errno));
    if (!wait_for(fd.get(), POLLOUT, Clock::now() + timeout)) {
      return make_error(ErrorKind::io,
                        what + ": no connection within " + std::to_string(timeout.count()) + " ms");
    }
    int error = 0;
    socklen_t length = sizeof(error);
    getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &length);
    if (error != 0)
      return std::unexpected(errno_error(ErrorKind::io, what + ": connect", error));
  }
  fcntl(fd.get(), F_SETFL, fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);
  return fd;
}

Expected<UniqueFd> vsock_listen(std::uint32_t port) {
  UniqueFd fd(::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd)
    return std::unexpected(errno_error(ErrorKind::io, "vsock socket", errno));
  sockaddr_vm address{};
  address.svm_family = AF_VSOCK;
  address.svm_cid = VMADDR_CID_ANY;
  address.svm_port = port;
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0 ||
      ::listen(fd.get(), 16) != 0) {
    return std::unexpected(
        errno_error(ErrorKind::io, "vsock listen on port " + std::to_string(port), errno));
  }
  return fd;
}

Expected<UniqueFd> accept_within(int listener, std::chrono::milliseconds timeout) {
  if (!wait_for(listener, POLLIN, Clock::now() + timeout)) {
    return make_error(ErrorKind::io,
                      "no connection within " + std::to_string(timeout.count()) + " ms");
  }
  UniqueFd fd(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
  if (!fd)
    return std::unexpected(errno_error(ErrorKind::io, "accept", errno));
  return fd;
}

}  // namespace crosvisor::vsock
