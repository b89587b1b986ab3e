#include "lifecycle/death_reason.hpp"

#include <signal.h>

#include <catch2/catch.hpp>

#include "crosvisor/vm_event.hpp"
#include "lifecycle/console_tail.hpp"
#include "lifecycle/vm_lifecycle.hpp"
#include "vmm/crosvm/crosvm_control.hpp"
#include "vmm/qemu/qmp_protocol.hpp"

using namespace crosvisor;

namespace {
DeathReason crosvm_reason(int code, bool guest_ran = true) {
  lifecycle::ExitFacts facts;
  facts.vmm = VmmKind::crosvm;
  facts.status = process::ExitStatus::exited(code);
  facts.guest_ran = guest_ran;
  return lifecycle::death_of(facts).reason;
}
DeathReason qemu_reason(int code, std::optional<lifecycle::GuestNotice> notice,
                        bool guest_ran = true) {
  lifecycle::ExitFacts facts;
  facts.vmm = VmmKind::qemu;
  facts.status = process::ExitStatus::exited(code);
  facts.guest_ran = guest_ran;
  facts.notice = notice;
  return lifecycle::death_of(facts).reason;
}
}  // namespace

TEST_CASE("crosvm's extended exit codes map to AVF's death reasons") {
  CHECK(crosvm_reason(0) == DeathReason::shutdown);
  CHECK(crosvm_reason(1, false) == DeathReason::start_failed);
  CHECK(crosvm_reason(1, true) == DeathReason::error);
  CHECK(crosvm_reason(32) == DeathReason::reboot);
  CHECK(crosvm_reason(33) == DeathReason::crash);
  CHECK(crosvm_reason(34) == DeathReason::guest_panic);
  CHECK(crosvm_reason(35) == DeathReason::start_failed);
  CHECK(crosvm_reason(36) == DeathReason::watchdog_reboot);
  CHECK(crosvm_reason(2) == DeathReason::unknown);
  CHECK(crosvm_reason(137) == DeathReason::unknown);
  lifecycle::ExitFacts killed;
  killed.vmm = VmmKind::crosvm;
  killed.status = process::ExitStatus::killed_by(SIGKILL);
  CHECK(lifecycle::death_of(killed).reason == DeathReason::killed);
}

TEST_CASE("QEMU's exit status is read together with its last QMP event") {
  CHECK(qemu_reason(0, std::nullopt) == DeathReason::shutdown);
  CHECK(qemu_reason(0, lifecycle::GuestNotice::powered_off) == DeathReason::shutdown);
  CHECK(qemu_reason(0, lifecycle::GuestNotice::reset) == DeathReason::reboot);
  CHECK(qemu_reason(1, lifecycle::GuestNotice::panicked) == DeathReason::guest_panic);
  CHECK(qemu_reason(1, std::nullopt, false) == DeathReason::start_failed);
  CHECK(qemu_reason(1, std::nullopt, true) == DeathReason::error);
  CHECK(qemu_reason(134, std::nullopt) == DeathReason::unknown);
}

TEST_CASE("an escalated stop is KILLED whatever the VMM's status, and says why") {
  lifecycle::ExitFacts facts;
  facts.vmm = VmmKind::crosvm;
  facts.status = process::ExitStatus::exited(0);
  facts.stop_escalated = true;
  facts.stop_timeout = std::chrono::milliseconds(1500);
  const lifecycle::Death death = lifecycle::death_of(facts);
  CHECK(death.reason == DeathReason::killed);
  CHECK(death.detail == "exit 0 after the guest ignored the stop request for 1500 ms");
}

TEST_CASE("an error exit carries the VMM's last words") {
  lifecycle::ExitFacts facts;
  facts.vmm = VmmKind::crosvm;
  facts.status = process::ExitStatus::exited(35);
  facts.last_vmm_output = "Unrecognized argument: --bogus";
  const lifecycle::Death death = lifecycle::death_of(facts);
  CHECK(death.reason == DeathReason::start_failed);
  CHECK(death.detail == "exit 35: Unrecognized argument: --bogus (crosvm refused its arguments)");
}

TEST_CASE(
    "QMP lines: greeting, replies by id, errors, and the events that tell how a guest ended") {
  using Kind = vmm::qmp::Message::Kind;
  CHECK(vmm::qmp::parse(R"({"QMP": {"version": {}, "capabilities": ["oob"]}})").kind ==
        Kind::greeting);
  const auto capabilities = vmm::qmp::parse(R"({"return": {}})");
  CHECK(capabilities.kind == Kind::reply);
  CHECK_FALSE(capabilities.id.has_value());
  const auto reply = vmm::qmp::parse(R"({"return": {}, "id": 7})");
  CHECK(reply.id == std::optional<std::uint64_t>(7));
  CHECK(reply.error.empty());
  const auto error = vmm::qmp::parse(
      R"({"error": {"class": "CommandNotFound", "desc": "no such thing"}, "id": 8})");
  CHECK(error.kind == Kind::reply);
  CHECK(error.error == "no such thing");
  const auto panic = vmm::qmp::parse(
      R"({"timestamp": {"seconds": 1, "microseconds": 2}, "event": "GUEST_PANICKED", "data": {"action": "poweroff"}})");
  CHECK(panic.kind == Kind::event);
  CHECK(panic.notice == lifecycle::GuestNotice::panicked);
  CHECK(
      vmm::qmp::parse(R"({"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-reset"}})")
          .notice == lifecycle::GuestNotice::reset);
  CHECK(vmm::qmp::parse(
            R"({"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}})")
            .notice == lifecycle::GuestNotice::powered_off);
  CHECK_FALSE(vmm::qmp::parse(
                  R"({"event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}})")
                  .notice.has_value());
  CHECK_FALSE(vmm::qmp::parse(R"({"event": "POWERDOWN"})").notice.has_value());
  CHECK(vmm::qmp::parse("not json").kind == Kind::invalid);
  CHECK(vmm::qmp::parse("[1, 2]").kind == Kind::invalid);
  CHECK(vmm::qmp::parse(R"({"event": 5})").kind == Kind::invalid);
  CHECK(vmm::qmp::command_line("quit", 3) == "{\"execute\":\"quit\",\"id\":3}\r\n");
  CHECK(vmm::qmp::command_for(vmm::ControlRequest::powerdown) == "system_powerdown");
}

TEST_CASE("crosvm control datagrams are serde_json unit variants") {
  CHECK(vmm::crosvm::request_datagram(vmm::ControlRequest::powerdown) == "\"Powerbtn\"");
  CHECK(vmm::crosvm::request_datagram(vmm::ControlRequest::quit) == "\"Exit\"");
  CHECK(vmm::crosvm::check_response("\"Ok\"").has_value());
  CHECK_FALSE(vmm::crosvm::check_response("{\"Err\":\"no\"}").has_value());
  CHECK_FALSE(vmm::crosvm::check_response("").has_value());
}

TEST_CASE("the console tail keeps the last lines within its line and byte budgets") {
  lifecycle::ConsoleTail tail(3, 10);
  tail.add("one");
  tail.add("two");
  tail.add("three");
  // "one\ntwo\nthree\n" is 14 bytes: "two\nthree\n" fit.
  CHECK(tail.last() == std::vector<std::string>{"two", "three"});
  CHECK(tail.bytes() == 10);
  tail.add("a");
  tail.add("b");
  CHECK(tail.last() == std::vector<std::string>{"three", "a", "b"});
  CHECK(tail.last(2) == std::vector<std::string>{"a", "b"});
  tail.add("0123456789abcdef");  // longer than the budget: its end only, newline counted
  CHECK(tail.last() == std::vector<std::string>{"789abcdef"});
  CHECK(tail.bytes() == 10);
  lifecycle::ConsoleTail few(2, 100);
  few.add_lines("1\n2\n3\n");
  CHECK(few.last() == std::vector<std::string>{"2", "3"});
  CHECK(few.size() == 2);
}

TEST_CASE("console text is walked line by line, without newlines or carriage returns") {
  std::vector<std::string> lines;
  for_each_line("a\r\nb\n\nc\rd\r\nlast", [&](std::string_view line) { lines.emplace_back(line); });
  CHECK(lines == std::vector<std::string>{"a", "b", "", "cd", "last"});
  lines.clear();
  for_each_line("", [&](std::string_view line) { lines.emplace_back(line); });
  CHECK(lines.empty());
}

TEST_CASE("a console block larger than the tail's budget is kept by its last lines") {
  lifecycle::ConsoleTail tail(3, 10);
  tail.add_lines("before\n");
  tail.add_lines("first line long\nxx\r\nyy\nzz\n");  // only lines starting in its last 10 bytes
  CHECK(tail.last() == std::vector<std::string>{"xx", "yy", "zz"});
  tail.add_lines("0123456789abcdef\n");  // one endless line: its end, as add keeps it
  CHECK(tail.last() == std::vector<std::string>{"789abcdef"});
  tail.add_lines("ab\ncd\n");  // small blocks: every line
  CHECK(tail.last() == std::vector<std::string>{"ab", "cd"});
  tail.add_lines("endless without a newline, longer than the budget");
  CHECK(tail.last() == std::vector<std::string>{"he budget"});
}

TEST_CASE("a VMM taken over ends with what it said: its exit status is not ours to learn") {
  lifecycle::ExitFacts facts;
  facts.status = process::ExitStatus::unobserved();
  CHECK(facts.status.to_string() == "exit status unknown (not this supervisor's child)");
  CHECK(lifecycle::death_of(facts).reason == DeathReason::unknown);
  facts.notice = lifecycle::GuestNotice::powered_off;
  CHECK(lifecycle::death_of(facts).reason == DeathReason::shutdown);
  facts.notice = lifecycle::GuestNotice::reset;
  CHECK(lifecycle::death_of(facts).reason == DeathReason::reboot);
  facts.notice = lifecycle::GuestNotice::panicked;
  CHECK(lifecycle::death_of(facts).reason == DeathReason::guest_panic);
  facts.notice.reset();
  facts.vmm = VmmKind::crosvm;
  facts.stop_requested = true;  // crosvm says nothing before it ends: the stop asked for
  CHECK(lifecycle::death_of(facts).reason == DeathReason::shutdown);
  facts.stop_escalated = true;
  CHECK(lifecycle::death_of(facts).reason == DeathReason::killed);
}

TEST_CASE("a VM taken over keeps its readiness, and one that is gone dies UNKNOWN") {
  VmSpec spec;
  spec.name = "web";
  spec.ready = ConsoleReady{"ready"};
  lifecycle::VmLifecycle was_ready(spec);
  was_ready.on_launch_requested();
  was_ready.on_taken_over(true);
  CHECK(was_ready.state() == VmState::ready);
  lifecycle::VmLifecycle booting(spec);
  booting.on_launch_requested();
  booting.on_taken_over(false);
  CHECK(booting.state() == VmState::running);
  CHECK(booting.on_console_line("... ready"));  // still may be, by its console
  lifecycle::VmLifecycle gone(spec);
  gone.on_launch_requested();
  const auto death = gone.on_lost("pid 7 no longer runs");
  CHECK(gone.state() == VmState::dead);
  CHECK(death.reason == DeathReason::unknown);
  CHECK(death.detail == "pid 7 no longer runs");
}

TEST_CASE("a ready line that comes before the VMM's control channel answers still counts") {
  VmSpec spec;
  spec.name = "web";
  spec.ready = ConsoleReady{"ready"};
  lifecycle::VmLifecycle taken(spec);  // what its guest printed while no supervisor ran comes first
  taken.on_launch_requested();
  CHECK(taken.on_console_line("... ready"));
  taken.on_taken_over(false);  // then QMP answers: it stays ready
  CHECK(taken.state() == VmState::ready);
  lifecycle::VmLifecycle fresh(spec);
  CHECK_FALSE(fresh.on_console_line("... ready"));  // no launch asked for: not ready
}
