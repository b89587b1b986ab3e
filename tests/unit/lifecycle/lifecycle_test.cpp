#include <signal.h>

#include <catch2/catch.hpp>

#include "lifecycle/vm_lifecycle.hpp"

using namespace crosvisor;

namespace {
VmSpec spec_with_ready() {
  VmSpec spec;
  spec.name = "t";
  spec.ready = ConsoleReady{"guest: ready"};
  spec.stop_timeout = std::chrono::milliseconds(3000);
  return spec;
}
}  // namespace

TEST_CASE("a VM walks created, starting, running, ready on its console") {
  lifecycle::VmLifecycle life(spec_with_ready());
  CHECK(life.state() == VmState::created);
  life.on_launch_requested();
  CHECK(life.state() == VmState::starting);
  life.on_started();
  CHECK(life.state() == VmState::running);
  CHECK_FALSE(life.on_console_line("booting"));
  CHECK(life.on_console_line("[ 1.0] guest: ready now"));
  CHECK(life.state() == VmState::ready);
  CHECK_FALSE(life.on_console_line("guest: ready"));  // only the first match counts
}

TEST_CASE("a clean exit is SHUTDOWN, a signal KILLED, exit 1 before any console START_FAILED") {
  lifecycle::VmLifecycle clean(spec_with_ready());
  clean.on_launch_requested();
  clean.on_started();
  clean.on_console_line("x");
  CHECK(clean.on_exited(process::ExitStatus::exited(0)).reason == DeathReason::shutdown);
  CHECK(clean.state() == VmState::dead);

  lifecycle::VmLifecycle killed(spec_with_ready());
  killed.on_launch_requested();
  killed.on_started();
  const lifecycle::Death death = killed.on_exited(process::ExitStatus::killed_by(SIGKILL));
  CHECK(death.reason == DeathReason::killed);
  CHECK(death.detail == "signal 9 (Killed)");

  lifecycle::VmLifecycle early(spec_with_ready());
  early.on_launch_requested();
  early.on_started();
  early.on_vmm_output("qemu: could not load kernel");
  const lifecycle::Death failed = early.on_exited(process::ExitStatus::exited(1));
  CHECK(failed.reason == DeathReason::start_failed);
  CHECK(failed.detail == "exit 1: qemu: could not load kernel");

  lifecycle::VmLifecycle late(spec_with_ready());
  late.on_launch_requested();
  late.on_started();
  late.on_console_line("booted");
  CHECK(late.on_exited(process::ExitStatus::exited(1)).reason == DeathReason::error);
  lifecycle::VmLifecycle odd(spec_with_ready());
  CHECK(odd.on_exited(process::ExitStatus::exited(7)).reason == DeathReason::unknown);
}

TEST_CASE("a stop escalates graceful, quit, terminate, kill, each after its deadline") {
  lifecycle::VmLifecycle life(spec_with_ready());
  life.on_launch_requested();
  life.on_started();
  REQUIRE(life.on_stop_requested() == lifecycle::StopStep::graceful);
  CHECK(life.state() == VmState::stopping);
  CHECK(life.step_deadline(lifecycle::StopStep::graceful) == std::chrono::milliseconds(3000));
  CHECK_FALSE(life.on_stop_requested().has_value());  // a second request changes nothing
  CHECK(life.on_step_timeout(lifecycle::StopStep::graceful) == lifecycle::StopStep::quit);
  CHECK(life.on_step_timeout(lifecycle::StopStep::graceful) == std::nullopt);  // stale timer
  CHECK(life.step_deadline(lifecycle::StopStep::quit) == lifecycle::kQuitGrace);
  CHECK(life.on_step_timeout(lifecycle::StopStep::quit) == lifecycle::StopStep::terminate);
  CHECK(life.on_step_timeout(lifecycle::StopStep::terminate) == lifecycle::StopStep::kill);
  CHECK(life.on_step_timeout(lifecycle::StopStep::kill) == std::nullopt);
  // QEMU exits 0 on quit and SIGTERM, but the guest did not power off: the supervisor ended it.
  CHECK(life.on_exited(process::ExitStatus::exited(0)).reason == DeathReason::killed);
}

TEST_CASE("a VMM that refuses the power button goes to quit at once, and the death says why") {
  lifecycle::VmLifecycle life(spec_with_ready());
  life.on_launch_requested();
  life.on_started();
  REQUIRE(life.on_stop_requested() == lifecycle::StopStep::graceful);
  CHECK(life.on_graceful_refused("crosvm refused: {\"Err\":95}") == lifecycle::StopStep::quit);
  CHECK_FALSE(life.on_graceful_refused("again").has_value());  // only from the graceful step
  CHECK_FALSE(
      life.on_step_timeout(lifecycle::StopStep::graceful).has_value());  // its timer is stale now
  const lifecycle::Death death = life.on_exited(process::ExitStatus::exited(0));
  CHECK(death.reason == DeathReason::killed);
  CHECK_THAT(death.detail, Catch::Contains("refused the power button") &&
                               Catch::Contains("{\"Err\":95}") &&
                               Catch::Contains("the guest not told"));
  CHECK_THAT(death.detail, !Catch::Contains("ignored"));
}

TEST_CASE("a guest that powers off within the stop timeout is SHUTDOWN") {
  lifecycle::VmLifecycle life(spec_with_ready());
  life.on_launch_requested();
  life.on_started();
  REQUIRE(life.on_stop_requested() == lifecycle::StopStep::graceful);
  CHECK(life.on_exited(process::ExitStatus::exited(0)).reason == DeathReason::shutdown);
  CHECK_FALSE(life.on_step_timeout(lifecycle::StopStep::graceful).has_value());
}

TEST_CASE("a stop asked for while starting is carried out once the VM runs") {
  lifecycle::VmLifecycle life(spec_with_ready());
  life.on_launch_requested();
  CHECK_FALSE(life.on_stop_requested().has_value());
  CHECK(life.stop_was_requested());
  life.on_started();
  CHECK(life.on_stop_requested() == lifecycle::StopStep::graceful);
}

TEST_CASE("a launch failure is START_FAILED with the reason") {
  lifecycle::VmLifecycle life(spec_with_ready());
  life.on_launch_requested();
  const lifecycle::Death death = life.on_launch_failed("kernel /x: No such file or directory");
  CHECK(death.reason == DeathReason::start_failed);
  CHECK(death.detail == "kernel /x: No such file or directory");
  CHECK(life.state() == VmState::dead);
}

TEST_CASE("a VM waiting for a vsock callback becomes ready on it, not on its console") {
  VmSpec spec;
  spec.name = "v";
  spec.ready = VsockReady{5000};
  lifecycle::VmLifecycle life(spec);
  CHECK_FALSE(life.on_vsock_ready());  // not running yet
  life.on_launch_requested();
  life.on_started();
  CHECK_FALSE(life.on_console_line("crosvisor-guest: ready"));
  CHECK(life.on_vsock_ready());
  CHECK(life.state() == VmState::ready);
  CHECK_FALSE(life.on_vsock_ready());
}

TEST_CASE("a VM not ready by its deadline is killed and dies HANGUP, and one ready in time is not") {
  VmSpec spec = spec_with_ready();
  CHECK(ready_deadline(spec) == limits::kDefaultReadyTimeout);
  spec.ready_timeout = std::chrono::milliseconds(1500);
  CHECK(ready_deadline(spec) == std::chrono::milliseconds(1500));

  lifecycle::VmLifecycle hung(spec);
  hung.on_launch_requested();
  hung.on_started();
  hung.on_console_line("booting, slowly");
  CHECK(hung.on_ready_timeout());
  CHECK(hung.state() == VmState::stopping);
  CHECK_FALSE(hung.on_stop_requested());  // already on its way down: nothing more to do
  CHECK_FALSE(hung.on_step_timeout(lifecycle::StopStep::kill));
  const auto death = hung.on_exited(process::ExitStatus::killed_by(SIGKILL));
  CHECK(death.reason == DeathReason::hangup);
  CHECK(death.detail ==
        "not ready within 1500 ms of its start (ready_timeout_s): killed, "
        "signal 9 (Killed)");

  lifecycle::VmLifecycle ready(spec);
  ready.on_launch_requested();
  ready.on_started();
  ready.on_console_line("guest: ready");
  CHECK_FALSE(ready.on_ready_timeout());
  CHECK(ready.state() == VmState::ready);

  lifecycle::VmLifecycle stopping(spec);
  stopping.on_launch_requested();
  stopping.on_started();
  stopping.on_stop_requested();
  CHECK_FALSE(stopping.on_ready_timeout());  // a stop asked for is not a hang
  CHECK(stopping.on_exited(process::ExitStatus::exited(0)).reason == DeathReason::shutdown);

  VmSpec no_condition;
  no_condition.name = "n";
  CHECK_FALSE(ready_deadline(no_condition).has_value());
}

TEST_CASE("a panicked guest kept for its dump is ended by its VMM's quit and dies GUEST_PANIC") {
  lifecycle::VmLifecycle life(spec_with_ready());
  life.on_launch_requested();
  life.on_started();
  life.on_console_line("guest: ready");
  life.on_guest_notice(lifecycle::GuestNotice::panicked);
  CHECK(life.on_panic_dumped() == std::optional(lifecycle::StopStep::quit));
  CHECK(life.state() == VmState::stopping);
  // Even when the quit has to escalate to signals: the guest's panic is why it died.
  CHECK(life.on_step_timeout(lifecycle::StopStep::quit) ==
        std::optional(lifecycle::StopStep::terminate));
  const auto death = life.on_exited(process::ExitStatus::killed_by(SIGTERM));
  CHECK(death.reason == DeathReason::guest_panic);
  CHECK_THAT(death.detail, Catch::EndsWith("ended after the guest panicked"));
}
