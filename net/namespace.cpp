#include "net/namespace.hpp"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <thread>

namespace crosvisor::net {
namespace {

Error refusal(int errnum) {
  if (errnum == EPERM) {
    return Error{ErrorKind::permission,
                 "networks need crosvisord to run as root (it makes a network namespace, a "
                 "bridge and TAP devices: CAP_NET_ADMIN)"};
  }
  return errno_error(ErrorKind::io, "network namespace", errnum);
}

}  // namespace

Expected<NetworkNamespace> NetworkNamespace::create() {
  // unshare() moves only the calling thread: a short-lived one, whose namespace the fd keeps.
  Expected<NetworkNamespace> made = make_error(ErrorKind::io, "network namespace: not made");
  std::thread([&] {
    if (::unshare(CLONE_NEWNET) != 0) {
      made = std::unexpected(refusal(errno));
      return;
    }
    UniqueFd fd(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    if (!fd) {
      made = std::unexpected(errno_error(ErrorKind::io, "open /proc/thread-self/ns/net", errno));
      return;
    }
    made = NetworkNamespace(std::move(fd));
  }).join();
  return made;
}

Expected<NetworkNamespace> NetworkNamespace::of_process(pid_t pid, int pidfd) {
  const std::string path = "/proc/" + std::to_string(pid) + "/ns/net";
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd)
    return std::unexpected(errno_error(ErrorKind::io, "open " + path, errno));
  // Opened by pid: only if the process the pidfd names still runs is it the one meant.
  pollfd ended{pidfd, POLLIN, 0};
  if (::poll(&ended, 1, 0) != 0)
    return make_error(ErrorKind::not_found, "process " + std::to_string(pid) + " ended");
  return NetworkNamespace(std::move(fd));
}

Expected<NetworkNamespace> NetworkNamespace::of_tap(int tap) {
  UniqueFd fd(::ioctl(tap, TUNGETDEVNETNS));
  if (!fd)
    return std::unexpected(errno_error(ErrorKind::io, "TUNGETDEVNETNS", errno));
  return NetworkNamespace(std::move(fd));
}

std::vector<UniqueFd> taps_held_by(pid_t pid, int pidfd) {
  std::vector<UniqueFd> taps;
  const std::filesystem::path fds = "/proc/" + std::to_string(pid) + "/fd";
  std::error_code ec;
  for (std::filesystem::directory_iterator it(fds, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code link_error;
    if (std::filesystem::read_symlink(it->path(), link_error) != "/dev/net/tun")
      continue;
    int number = -1;
    try {
      number = std::stoi(it->path().filename().string());
    } catch (const std::exception&) {
      continue;
    }
    UniqueFd copy(static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd, number, 0)));
    if (copy)
      taps.push_back(std::move(copy));
  }
  return taps;
}

Expected<void> NetworkNamespace::inside(const std::function<Expected<void>()>& work) const {
  Expected<void> result;
  std::thread([&] {
    if (::setns(fd_.get(), CLONE_NEWNET) != 0) {
      result = std::unexpected(refusal(errno));
      return;
    }
    result = work();
  }).join();
  return result;
}

}  // namespace crosvisor::net
