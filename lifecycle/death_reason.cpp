#include "lifecycle/death_reason.hpp"

namespace crosvisor::lifecycle {
namespace {

std::string explained(const ExitFacts& facts) {
  std::string detail = facts.status.to_string();
  if (!facts.last_vmm_output.empty())
    detail += ": " + facts.last_vmm_output;
  return detail;
}

Death crosvm_death(const ExitFacts& facts) {
  const std::string how = facts.status.to_string();
  switch (facts.status.value) {
    case crosvm_exit::kStopped:
      return {DeathReason::shutdown, how};
    case crosvm_exit::kError:
      return {facts.guest_ran ? DeathReason::error : DeathReason::start_failed, explained(facts)};
    case crosvm_exit::kReset:
      return {DeathReason::reboot, how};
    case crosvm_exit::kCrash:
      return {DeathReason::crash, explained(facts)};
    case crosvm_exit::kGuestPanic:
      return {DeathReason::guest_panic, how};
    case crosvm_exit::kInvalidArgs:
      return {DeathReason::start_failed, explained(facts) + " (crosvm refused its arguments)"};
    case crosvm_exit::kWatchdogReset:
      return {DeathReason::watchdog_reboot, how};
    default:
      return {DeathReason::unknown, explained(facts)};
  }
}

Death qemu_death(const ExitFacts& facts) {
  const std::string how = facts.status.to_string();
  // -action panic=exit-failure makes a panic exit 1 after GUEST_PANICKED; -no-reboot makes a
  // reset exit 0 after SHUTDOWN(reason guest-reset).
  if (facts.notice == GuestNotice::panicked && facts.status.value <= 1)
    return {DeathReason::guest_panic, how};
  switch (facts.status.value) {
    case 0:
      if (facts.notice == GuestNotice::reset)
        return {DeathReason::reboot, how};
      return {DeathReason::shutdown, how};
    case 1:
      return {facts.guest_ran ? DeathReason::error : DeathReason::start_failed, explained(facts)};
    default:
      return {DeathReason::unknown, explained(facts)};
  }
}

std::string seconds_text(std::chrono::milliseconds duration) {
  const auto ms = duration.count();
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms";
}

}  // namespace

Death death_of(const ExitFacts& facts) {
  const std::string how = facts.status.to_string();
  if (facts.hung_after) {
    return {DeathReason::hangup, "not ready within " + seconds_text(*facts.hung_after) +
                                     " of its start (ready_timeout_s): killed, " + how};
  }
  if (facts.ended_after_panic)
    return {DeathReason::guest_panic, how + ", ended after the guest panicked"};
  if (facts.status.oom_killed)
    return {DeathReason::out_of_memory,
            how +
                " by the kernel's OOM killer: the VMM reached its cgroup's memory limit "
                "(memory_mib + memory_overhead_mib)"};
  if (facts.stop_escalated) {
    // The guest did not power off (or could not be asked) and the supervisor ended the VMM,
    // whatever it says.
    if (!facts.graceful_refused.empty())
      return {DeathReason::killed, how + " after the VMM refused the power button (" +
                                       facts.graceful_refused +
                                       "): stopped at once through its quit request, the guest "
                                       "not told"};
    return {DeathReason::killed, how + " after the guest ignored the stop request for " +
                                     std::to_string(facts.stop_timeout.count()) + " ms"};
  }
  if (facts.status.signaled)
    return {DeathReason::killed, how};
  if (!facts.status.observed) {
    // A VMM taken over from an earlier supervisor: what it said before it ended is all there is.
    switch (facts.notice.value_or(GuestNotice::powered_off)) {
      case GuestNotice::powered_off:
        if (facts.notice)
          return {DeathReason::shutdown, "the guest powered off; " + how};
        break;
      case GuestNotice::reset:
        return {DeathReason::reboot, "the guest reset; " + how};
      case GuestNotice::panicked:
        return {DeathReason::guest_panic, how};
    }
    if (facts.stop_requested)
      return {DeathReason::shutdown, "stopped as asked; " + how};
    return {DeathReason::unknown, how};
  }
  switch (facts.vmm) {
    case VmmKind::crosvm:
      return crosvm_death(facts);
    case VmmKind::qemu:
      break;
  }
  return qemu_death(facts);
}

}  // namespace crosvisor::lifecycle
