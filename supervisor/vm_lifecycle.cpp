#include "supervisor/vm_lifecycle.hpp"

namespace crosvisor {

void VmLifecycle::on_launch_requested() {
  state_ = VmState::starting;
}

void VmLifecycle::on_started() {
  if (state_ == VmState::starting)
    state_ = VmState::running;
}

bool VmLifecycle::on_console_line(std::string_view line) {
  console_seen_ = true;
  if (state_ != VmState::running || !spec_.ready)
    return false;
  if (line.find(spec_.ready->pattern) == std::string_view::npos)
    return false;
  state_ = VmState::ready;
  return true;
}

bool VmLifecycle::on_vsock_ready() {
  if (state_ != VmState::running || !spec_.ready_vsock)
    return false;
  state_ = VmState::ready;
  return true;
}

void VmLifecycle::on_vmm_output(std::string_view line) {
  if (!line.empty())
    last_vmm_output_ = line;
}

std::optional<StopStep> VmLifecycle::on_stop_requested() {
  stop_requested_ = true;
  if (state_ != VmState::running && state_ != VmState::ready)
    return std::nullopt;
  state_ = VmState::stopping;
  last_step_ = StopStep::graceful;
  return StopStep::graceful;
}

std::optional<StopStep> VmLifecycle::on_step_timeout(StopStep step) {
  if (state_ == VmState::dead || last_step_ != step)
    return std::nullopt;
  switch (step) {
    case StopStep::graceful:
      last_step_ = StopStep::terminate;
      break;
    case StopStep::terminate:
      last_step_ = StopStep::kill;
      break;
    case StopStep::kill:
      return std::nullopt;
  }
  return last_step_;
}

std::chrono::milliseconds VmLifecycle::step_deadline(StopStep step) const {
  switch (step) {
    case StopStep::graceful:
      return spec_.stop_timeout;
    case StopStep::terminate:
      return kTerminateGrace;
    case StopStep::kill:
      break;
  }
  return std::chrono::milliseconds::zero();
}

Death VmLifecycle::on_launch_failed(const std::string& why) {
  state_ = VmState::dead;
  return Death{DeathReason::start_failed, why};
}

Death VmLifecycle::on_exited(const ExitStatus& status) {
  const bool escalated = last_step_ && *last_step_ != StopStep::graceful;
  state_ = VmState::dead;
  const std::string how = status.to_string();
  if (escalated) {
    // The guest did not power off in time and we ended the VMM: whatever its status says.
    return Death{DeathReason::killed, how + " after the guest ignored the stop request for " +
                                          std::to_string(spec_.stop_timeout.count()) + " ms"};
  }
  if (status.signaled)
    return Death{DeathReason::killed, how};
  // QEMU: 0 for a guest power-off, `quit` and SIGTERM; 1 for its own errors.
  if (status.value == 0)
    return Death{DeathReason::shutdown, how};
  std::string detail = how;
  if (!last_vmm_output_.empty())
    detail += ": " + last_vmm_output_;
  if (status.value == 1) {
    // Before the guest printed anything, an error means the VM never started.
    return Death{console_seen_ ? DeathReason::error : DeathReason::start_failed, detail};
  }
  return Death{DeathReason::unknown, detail};
}

}  // namespace crosvisor
