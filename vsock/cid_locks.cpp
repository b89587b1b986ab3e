#include "vsock/cid_locks.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <charconv>
#include <cstddef>
#include <cstdio>
#include <cstring>

namespace crosvisor::vsock {
namespace {

// An abstract address: sun_path starts with NUL and the name runs to the given length.
socklen_t abstract_address(const std::string& name, sockaddr_un& address) {
  address = {};
  address.sun_family = AF_UNIX;
  const std::size_t length = std::min(name.size(), sizeof(address.sun_path) - 1);
  std::memcpy(address.sun_path + 1, name.data(), length);
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + length);
}

}  // namespace

std::string CidLocks::name(std::uint32_t cid) const {
  return scope_ + "/cid/" + std::to_string(cid);
}

Expected<std::optional<UniqueFd>> CidLocks::try_lock(std::uint32_t cid) const {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd)
    return std::unexpected(
        errno_error(ErrorKind::io, "socket for vsock CID " + std::to_string(cid), errno));
  sockaddr_un address;
  const socklen_t length = abstract_address(name(cid), address);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), length) != 0) {
    if (errno == EADDRINUSE)
      return std::optional<UniqueFd>();
    return std::unexpected(errno_error(ErrorKind::io, "bind @" + name(cid), errno));
  }
  // Listening lets a contender ask who holds the CID (SO_PEERCRED). Nobody is ever accepted: each
  // question stays queued until the CID is given back, so the backlog is large enough for many.
  if (::listen(fd.get(), SOMAXCONN) != 0)
    return std::unexpected(errno_error(ErrorKind::io, "listen @" + name(cid), errno));
  return std::optional<UniqueFd>(std::move(fd));
}

void CidLocks::unlock(std::uint32_t, UniqueFd lock) const {
  lock.reset();
}

std::optional<std::string> CidLocks::holder(std::uint32_t cid) const {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd)
    return std::nullopt;
  sockaddr_un address;
  const socklen_t length = abstract_address(name(cid), address);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), length) != 0)
    return std::nullopt;
  ucred peer{};
  socklen_t size = sizeof(peer);
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &peer, &size) != 0 || peer.pid <= 0)
    return std::nullopt;
  return "pid " + std::to_string(peer.pid) + ", uid " + std::to_string(peer.uid);
}

Expected<LastCidFile> LastCidFile::open(const std::filesystem::path& file) {
  std::error_code ec;
  std::filesystem::create_directories(file.parent_path(), ec);
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
