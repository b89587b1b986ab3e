#include "lifecycle/vm_lifecycle.hpp"

namespace crosvisor::lifecycle {

void VmLifecycle::on_launch_requested() {
  state_ = VmState::starting;
}

void VmLifecycle::on_started() {
  if (state_ == VmState::starting)
    state_ = VmState::running;
}

bool VmLifecycle::on_console_line(std::string_view line) {
  console_seen_ = true;
  const auto* ready = std::get_if<ConsoleReady>(&spec_.ready);
  // Starting counts too: the console may speak before the VMM's control channel has answered
  // (a VMM taken over has what its guest printed meanwhile waiting in its console).
  if ((state_ != VmState::starting && state_ != VmState::running) || ready == nullptr)
    return false;
  if (line.find(ready->pattern) == std::string_view::npos)
    return false;
  state_ = VmState::ready;
  return true;
}

bool VmLifecycle::awaits_console_ready() const {
  return (state_ == VmState::starting || state_ == VmState::running) &&
         std::holds_alternative<ConsoleReady>(spec_.ready);
}

bool VmLifecycle::on_vsock_ready() {
  if (state_ != VmState::running || !std::holds_alternative<VsockReady>(spec_.ready))
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
      last_step_ = StopStep::quit;
      break;
    case StopStep::quit:
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

std::optional<StopStep> VmLifecycle::on_graceful_refused(std::string why) {
  if (state_ == VmState::dead || last_step_ != StopStep::graceful)
    return std::nullopt;
  graceful_refused_ = std::move(why);
  last_step_ = StopStep::quit;
  return last_step_;
}

bool VmLifecycle::on_ready_timeout() {
  if (state_ != VmState::running)
    return false;  // ready in time, or already on its way down
  hung_ = true;
  stop_requested_ = true;
  state_ = VmState::stopping;
  last_step_ = StopStep::kill;
  return true;
}

std::optional<StopStep> VmLifecycle::on_panic_dumped() {
  if (state_ == VmState::dead)
    return std::nullopt;
  ended_after_panic_ = true;
  stop_requested_ = true;
  state_ = VmState::stopping;
  last_step_ = StopStep::quit;
  return last_step_;
}

std::chrono::milliseconds VmLifecycle::step_deadline(StopStep step) const {
  switch (step) {
    case StopStep::graceful:
      return spec_.stop_timeout;
    case StopStep::quit:
      return kQuitGrace;
    case StopStep::terminate:
      return kTerminateGrace;
    case StopStep::kill:
      break;
  }
  return std::chrono::milliseconds::zero();
}

void VmLifecycle::on_taken_over(bool was_ready) {
  console_seen_ = true;
  if (state_ == VmState::starting)
    state_ = VmState::running;
  if (was_ready && state_ == VmState::running && has_ready_condition(spec_))
    state_ = VmState::ready;
}

Death VmLifecycle::on_lost(const std::string& why) {
  state_ = VmState::dead;
  return Death{DeathReason::unknown, why};
}

Death VmLifecycle::on_launch_failed(const std::string& why) {
  state_ = VmState::dead;
  return Death{DeathReason::start_failed, why};
}

Death VmLifecycle::on_exited(const process::ExitStatus& status) {
  state_ = VmState::dead;
  ExitFacts facts;
  facts.vmm = spec_.vmm;
  facts.status = status;
  facts.guest_ran = console_seen_;
  facts.stop_escalated = last_step_ && *last_step_ != StopStep::graceful;
  facts.stop_requested = stop_requested_;
  if (hung_)
    facts.hung_after = ready_deadline(spec_);
  facts.ended_after_panic = ended_after_panic_;
  facts.stop_timeout = spec_.stop_timeout;
  facts.notice = notice_;
  facts.graceful_refused = graceful_refused_;
  facts.last_vmm_output = last_vmm_output_;
  return death_of(facts);
}

}  // namespace crosvisor::lifecycle
