#include "net/namespace.hpp"

#include <fcntl.h>
#include <sched.h>

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
