// The fence's second line (docs/cluster.md): a small process of its own, forked when the host
// joins, that SIGKILLs this host's cluster VMMs when the fence's deadline passes and nobody
// moved it on. It covers a crosvisord that is frozen (SIGSTOP, stuck) while its VMMs, separate
// processes, run on: its own fence timer is frozen with it, and without this the cluster would
// place those VMs again and run them twice. Its deadline is a little after the daemon's own
// fence (which stops VMs gracefully first) and still before the lease can expire. The daemon
// and the keeper share one page of memory: the deadline, and the VMMs to kill, each by pid and
// start time (a pid alone may be another process's by then). The keeper dies with the daemon
// (PR_SET_PDEATHSIG); so do the VMMs. A frozen kernel is beyond it (a hardware watchdog's job).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>

#include "crosvisor/error.hpp"

namespace crosvisor::cluster {

class FenceKeeper {
 public:
  using Clock = std::chrono::steady_clock;  // CLOCK_MONOTONIC, the same in both processes
  static constexpr std::size_t kSlots = 4096;

  static Expected<FenceKeeper> start();
  FenceKeeper(FenceKeeper&& other) noexcept;
  FenceKeeper& operator=(FenceKeeper&&) = delete;
  ~FenceKeeper();  // the keeper killed and reaped

  // When to kill (none: never, e.g. while no lease is held).
  void set_deadline(std::optional<Clock::time_point> deadline);
  // A VMM to kill when the deadline passes; refused (limit) when every slot is taken.
  Expected<void> watch(pid_t pid);
  void unwatch(pid_t pid);
  // How many VMMs the keeper has killed, in all.
  std::uint64_t kills() const;
  pid_t pid() const { return keeper_; }

 private:
  struct Shared;
  FenceKeeper(Shared* shared, pid_t keeper) : shared_(shared), keeper_(keeper) {}
  Shared* shared_ = nullptr;
  pid_t keeper_ = -1;
};

}  // namespace crosvisor::cluster
