// The state machine of one VM, free of actors and processes so that it can be tested alone:
// created → starting → running → ready → stopping → dead. The vm actor feeds it what happens and
// carries out what it asks for.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "crosvisor/vm_spec.hpp"
#include "crosvisor/vm_state.hpp"
#include "lifecycle/death_reason.hpp"
#include "process/exit_status.hpp"

namespace crosvisor::lifecycle {

// The steps of a stop, each taken only if the one before did not end the VMM in time.
enum class StopStep {
  graceful,   // ask the guest to power off (ACPI power button)
  quit,       // ask the VMM to end at once through its control channel (QMP quit, crosvm stop)
  terminate,  // SIGTERM to the VMM
  kill,       // SIGKILL to the VMM's process group
};

class VmLifecycle {
 public:
  explicit VmLifecycle(VmSpec spec) : spec_(std::move(spec)) {}

  VmState state() const { return state_; }
  const VmSpec& spec() const { return spec_; }

  void on_launch_requested();
  void on_started();
  // True when this line makes the VM ready (the first line that matches the ready pattern, once
  // the launch was asked for).
  bool on_console_line(std::string_view line);
  // Whether a console line could still make the VM ready (it waits for a console pattern): once
  // not, a chatty guest's lines need not be looked at.
  bool awaits_console_ready() const;
  // The guest printed something, whatever it was: it ran (a death reason's fact).
  void on_console_output() { console_seen_ = true; }
  bool console_seen() const { return console_seen_; }
  // The guest connected to the vsock ready port: true when this makes the VM ready.
  bool on_vsock_ready();
  // Remembers the VMM's own messages: the last one explains a start failure.
  void on_vmm_output(std::string_view line);
  // The VMM reported how its guest is ending (the last report counts).
  void on_guest_notice(GuestNotice notice) { notice_ = notice; }

  // A stop was asked for: the first step to take, or nothing when the VM is already stopping,
  // dead or not started yet (a VM that has not started is stopped when its launch completes).
  std::optional<StopStep> on_stop_requested();
  // The deadline of `step` passed and the VMM is still alive: the next step, if any.
  std::optional<StopStep> on_step_timeout(StopStep step);
  // The VMM refused the graceful request (it has no power button): the next step, at once,
  // when the graceful step is the current one.
  std::optional<StopStep> on_graceful_refused(std::string why);
  // The VM's ready deadline passed: true when it is still not ready (nor stopping), and is to be
  // killed; it then dies HANGUP.
  bool on_ready_timeout();
  // A debuggable guest panicked and was kept paused for its memory dump; the dump is done (or
  // could not be): the VMM is asked to quit, and the VM dies GUEST_PANIC however it ends.
  std::optional<StopStep> on_panic_dumped();
  // How long to wait after `step` before escalating.
  std::chrono::milliseconds step_deadline(StopStep step) const;
  bool stop_was_requested() const { return stop_requested_; }
  // A stop that gives the guest a different time to power off than the spec's.
  void set_stop_timeout(std::chrono::milliseconds timeout) { spec_.stop_timeout = timeout; }

  Death on_launch_failed(const std::string& why);
  Death on_exited(const process::ExitStatus& status);

  // Taking over a VMM that an earlier supervisor started (live restore): it runs, and was ready
  // then (its ready line will not be printed again)...
  void on_taken_over(bool was_ready);
  // ...or it is gone: it ended while no supervisor watched, and how cannot be known.
  Death on_lost(const std::string& why);

 private:
  VmSpec spec_;
  VmState state_ = VmState::created;
  bool stop_requested_ = false;
  std::optional<StopStep> last_step_;
  bool console_seen_ = false;
  std::string last_vmm_output_;
  std::optional<GuestNotice> notice_;
  std::string graceful_refused_;
  bool hung_ = false;
  bool ended_after_panic_ = false;
};

// How long the VMM has to act on a quit request, and then on SIGTERM, before the next step.
inline constexpr std::chrono::milliseconds kQuitGrace{2'000};
inline constexpr std::chrono::milliseconds kTerminateGrace{2'000};

}  // namespace crosvisor::lifecycle
