// What one user may take of a shared daemon: a number of VMs, and of file descriptors (each VM
// holds the files its client handed over plus its own pipes and sockets), and never the last
// ones the daemon keeps for root. Plain logic, so that a refusal says exactly which limit it is.
// Root and embedding applications (VMs without an owner) are not limited per user.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>

#include "crosvisor/error.hpp"
#include "crosvisor/vm_spec.hpp"

namespace crosvisor::lifecycle {

struct OwnerLimits {
  std::size_t max_vms = 0;      // per user; 0: no limit
  std::size_t max_fds = 0;      // per user, estimated as estimated_fds() counts; 0: no limit
  std::size_t fd_capacity = 0;  // the daemon's RLIMIT_NOFILE; 0: not checked
  std::size_t fd_reserve = 0;   // of fd_capacity, kept for root and the daemon itself
};

// The descriptors a running VM holds in its supervisor: the handed files, the console and VMM
// output pipes, the pidfd, the control socket, the CID reservation, the console log, and the
// generated parts of each composite disk.
std::size_t estimated_fds(const VmSpec& spec);

class OwnerUsage {
 public:
  explicit OwnerUsage(OwnerLimits limits) : limits_(limits) {}

  // Why `owner` may not start a VM holding `fds` more, if it may not; `open_now` is how many
  // descriptors the daemon has open (only read when fd_capacity is set).
  std::optional<Error> admit(std::optional<std::uint32_t> owner, std::size_t fds,
                             std::size_t open_now) const;
  void add(std::optional<std::uint32_t> owner, std::size_t fds);
  void remove(std::optional<std::uint32_t> owner, std::size_t fds);
  std::size_t vms(std::uint32_t owner) const;
  std::size_t fds(std::uint32_t owner) const;
  const OwnerLimits& limits() const { return limits_; }

 private:
  struct Usage {
    std::size_t vms = 0;
    std::size_t fds = 0;
  };
  OwnerLimits limits_;
  std::map<std::uint32_t, Usage> usage_;
};

// How many descriptors this process has open (a count of /proc/self/fd).
std::size_t open_fd_count();

}  // namespace crosvisor::lifecycle
