// A network namespace of crosvisor's own (docs/networks.md), held by an fd. It lives while that
// fd, or anything inside it, does: a TAP fd a VMM holds, the dnsmasq that serves it. Nothing names
// it in the file system, so nothing of it outlives its holders: a crosvisord killed with SIGKILL
// leaves no namespace behind (its VMMs and dnsmasq die with it).
#pragma once

#include <functional>

#include "core/unique_fd.hpp"
#include "crosvisor/error.hpp"

namespace crosvisor::net {

class NetworkNamespace {
 public:
  // A new, empty namespace (loopback only, down). Needs CAP_NET_ADMIN: a refusal says what to do.
  static Expected<NetworkNamespace> create();

  int fd() const { return fd_.get(); }
  // Runs `work` on a thread of its own that joined this namespace (a namespace is a thread's,
  // not a process's: the caller's thread never moves); returns what `work` returned.
  Expected<void> inside(const std::function<Expected<void>()>& work) const;

 private:
  explicit NetworkNamespace(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace crosvisor::net
