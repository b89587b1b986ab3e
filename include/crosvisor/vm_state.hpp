// The lifecycle of a VM as clients see it, and why a VM died (AVF's DeathReason, extended).
#pragma once

#include <optional>
#include <string_view>

namespace crosvisor {

enum class VmState { created, starting, running, ready, stopping, dead };

enum class DeathReason {
  shutdown,         // the guest powered off (or the VMM was asked to stop and did so cleanly)
  start_failed,     // the VMM could not be started, or exited before the guest ran
  reboot,           // the guest rebooted and the VMM was told not to restart it
  crash,            // the VMM crashed
  guest_panic,      // the guest kernel panicked
  watchdog_reboot,  // the guest watchdog fired
  killed,           // the VMM died from a signal, or was terminated by the supervisor
  error,            // the VMM reported an error while running
  unknown,          // an exit status we cannot explain
  hangup,           // the guest was not ready within its ready timeout, and was killed (AVF)
  out_of_memory,    // the kernel's OOM killer ended the VMM at its cgroup's memory limit
};

std::string_view to_string(VmState state);
std::string_view to_string(DeathReason reason);
// The reverse; nothing for a name that is not one.
std::optional<VmState> vm_state_named(std::string_view name);
std::optional<DeathReason> death_reason_named(std::string_view name);

}  // namespace crosvisor
