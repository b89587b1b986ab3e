// Why a VM died, from how its VMM ended. Each VMM says it differently: crosvm with
// --extended-status encodes the reason in its exit code; QEMU exits 0 or 1 and tells the rest
// through QMP events. Pure logic, unit-tested alone.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "crosvisor/vm_spec.hpp"
#include "crosvisor/vm_state.hpp"
#include "lifecycle/guest_notice.hpp"
#include "process/exit_status.hpp"

namespace crosvisor::lifecycle {

struct Death {
  DeathReason reason;
  std::string detail;  // for people: exit status, last VMM message, who stopped it
};

// crosvm's exit codes with --extended-status (src/main.rs CommandStatus).
namespace crosvm_exit {
inline constexpr int kStopped = 0;
inline constexpr int kError = 1;
inline constexpr int kReset = 32;
inline constexpr int kCrash = 33;
inline constexpr int kGuestPanic = 34;
inline constexpr int kInvalidArgs = 35;
inline constexpr int kWatchdogReset = 36;
}  // namespace crosvm_exit

struct ExitFacts {
  VmmKind vmm = VmmKind::qemu;
  process::ExitStatus status;
  // The guest printed on its console: an error after that is an ERROR, before it a START_FAILED.
  bool guest_ran = false;
  // The guest ignored a stop request and the supervisor ended the VMM itself.
  bool stop_escalated = false;
  // A stop was asked for (and not escalated): the end of a VMM whose exit status cannot be
  // learnt is taken as that stop.
  bool stop_requested = false;
  // The guest was not ready this long after its VMM started, and the supervisor killed it.
  std::optional<std::chrono::milliseconds> hung_after;
  // The guest panicked and was kept paused for its memory dump; then the supervisor ended it.
  bool ended_after_panic = false;
  // The VMM refused the graceful request (crosvm without a power button), so the stop went
  // straight to the VMM's own quit: why, as the VMM said it.
  std::string graceful_refused;
  std::chrono::milliseconds stop_timeout{0};
  // The last thing the VMM reported about its guest (QEMU only).
  std::optional<GuestNotice> notice;
  // The VMM's last line on stdout/stderr, which usually explains an error exit.
  std::string last_vmm_output;
};

Death death_of(const ExitFacts& facts);

}  // namespace crosvisor::lifecycle
