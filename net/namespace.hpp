// A network namespace of crosvisor's own (docs/networks.md), held by an fd. It lives while that
// fd, or anything inside it, does: a TAP fd a VMM holds, the dnsmasq that serves it. Nothing names
// it in the file system, so nothing of it outlives its holders: a crosvisord killed with SIGKILL
// leaves no namespace behind unless its VMMs and dnsmasq run on (live restore, docs/state.md);
// the next daemon finds it again through them.
#pragma once

#include <sys/types.h>

#include <functional>
#include <vector>

#include "core/unique_fd.hpp"
#include "crosvisor/error.hpp"

namespace crosvisor::net {

class NetworkNamespace {
 public:
  // A new, empty namespace (loopback only, down). Needs CAP_NET_ADMIN: a refusal says what to do.
  static Expected<NetworkNamespace> create();

  // The namespace process `pid` is in, given a pidfd for it (opened first, and checked to be
  // the process meant): refused when the process ended meanwhile (the pid may be another's).
  static Expected<NetworkNamespace> of_process(pid_t pid, int pidfd);
  // The namespace the TAP device behind `tap` lives in (TUNGETDEVNETNS).
  static Expected<NetworkNamespace> of_tap(int tap);

  int fd() const { return fd_.get(); }
  // Runs `work` on a thread of its own that joined this namespace (a namespace is a thread's,
  // not a process's: the caller's thread never moves); returns what `work` returned.
  Expected<void> inside(const std::function<Expected<void>()>& work) const;

 private:
  explicit NetworkNamespace(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

// Copies of the TAP fds a process holds (pidfd_getfd: the caller may ptrace it), given a
// pidfd checked to be the process meant: how a namespace is found again through a VMM.
std::vector<UniqueFd> taps_held_by(pid_t pid, int pidfd);

}  // namespace crosvisor::net
