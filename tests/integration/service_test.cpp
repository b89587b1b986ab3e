// Real guests under QEMU (TCG), driven through the service actor as an embedding application would.
#include "crosvisor/service.hpp"

#include <signal.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <catch2/catch.hpp>
#include <fstream>

#include "crosvisor/messages.hpp"
#include "integration/guest.hpp"
#include "integration/harness.hpp"
#include "support/processes.hpp"
#include "support/temp_dir.hpp"
#include "vmm/reactor.hpp"
#include "vsock/channel.hpp"

using namespace crosvisor;
using namespace std::chrono_literals;

namespace {

// The VMs' private directories still present (the console logs live beside them, in logs/).
std::size_t run_dirs_left(const std::filesystem::path& runtime) {
  std::size_t count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(runtime))
    count += entry.path().filename() != "logs";
  return count;
}

pid_t pid_of(const VmEvent& running) {
  REQUIRE(running.state == VmState::running);
  REQUIRE(running.detail.rfind("pid ", 0) == 0);
  return std::stoi(running.detail.substr(4));
}

}  // namespace

TEST_CASE("a guest boots to ready and its own power-off is reported as SHUTDOWN") {
  test::require_guest();
  test::Harness h;
  h.create(test::guest_spec("boot", "cv.then=poweroff cv.delay=0.3"));
  CHECK(h.next_event().state == VmState::starting);
  const pid_t pid = pid_of(h.next_event());
  h.await_state(VmState::ready);
  const VmEvent dead = h.await_state(VmState::dead);
  CHECK(dead.reason == DeathReason::shutdown);
  CHECK(dead.detail == "exit 0");
  CHECK(h.console_has("crosvisor-guest: powering off"));
  // Under TCG the backend tells the kernel the TSC rate (see qemu::kernel_params).
  CHECK(h.console_has("tsc_early_khz="));
  CHECK_FALSE(test::process_alive(pid));
  CHECK(test::eventually([&] { return h.reactor->live_children() == 0; }, 5s));
  // The VM's private directory (QMP socket) is gone with it; its console log (debug = full) is
  // kept, byte for byte what the guest printed.
  CHECK(test::eventually([&] { return run_dirs_left(h.runtime.path()) == 0; }, 5s));
  const std::string log = test::read_file(h.runtime / "logs" / "boot.log");
  CHECK(log.find("crosvisor-guest: ready") != std::string::npos);
  CHECK(log.find("crosvisor-guest: powering off") != std::string::npos);
}

TEST_CASE("SIGKILL of the QEMU child is reported as KILLED") {
  test::require_guest();
  test::Harness h;
  auto vm = h.create(test::guest_spec("victim", ""));
  const pid_t pid = pid_of(h.await_state(VmState::running));
  h.await_state(VmState::ready);
  // debug = full: the last console lines are kept in memory for `vm logs`.
  auto tail = h.client->request(vm, 10s, logs_atom::value, std::uint32_t{0});
  tail.receive(
      [](const std::vector<std::string>& lines) {
        // The guest's line may share a console line with kernel output: look for it inside.
        CHECK(std::any_of(lines.begin(), lines.end(), [](const std::string& line) {
          return line.find("crosvisor-guest: ready") != std::string::npos;
        }));
      },
      [](caf::error&) { FAIL("no console tail"); });
  REQUIRE(kill(pid, SIGKILL) == 0);
  const VmEvent dead = h.await_state(VmState::dead);
  CHECK(dead.reason == DeathReason::killed);
  CHECK(dead.detail == "signal 9 (Killed)");
}

TEST_CASE("a guest that reboots is REBOOT, and a guest kernel panic is GUEST_PANIC") {
  test::require_guest();
  test::Harness h;
  h.create(test::guest_spec("rebooter", "cv.then=reboot"));
  const VmEvent rebooted = h.await_state(VmState::dead);
  CHECK(rebooted.reason == DeathReason::reboot);
  CHECK(h.console_has("crosvisor-guest: rebooting"));

  h.create(test::guest_spec("panicker", "cv.then=panic"));
  const VmEvent panicked = h.await_state(VmState::dead);
  CHECK(panicked.reason == DeathReason::guest_panic);
  CHECK(h.console_has("Kernel panic - not syncing"));
}

TEST_CASE("a debug = none VM keeps its console nowhere") {
  test::require_guest();
  test::Harness h;
  VmSpec spec = test::guest_spec("quiet", "cv.then=poweroff cv.delay=0.3");
  spec.debug = DebugLevel::none;
  auto vm = h.create(spec);
  h.await_state(VmState::ready);  // the console is still read for the ready pattern
  auto tail = h.client->request(vm, 10s, logs_atom::value, std::uint32_t{0});
  tail.receive([](const std::vector<std::string>&) { FAIL("a debug = none VM kept its console"); },
               [&](caf::error& error) {
                 CHECK_THAT(h.system.render(error), Catch::Contains("its console is not kept"));
               });
  CHECK(h.await_state(VmState::dead).reason == DeathReason::shutdown);
  CHECK(h.console.empty());
  CHECK_FALSE(std::filesystem::exists(h.runtime / "logs" / "quiet.log"));
}

TEST_CASE("a stop request powers the guest off through its power button: SHUTDOWN") {
  test::require_guest();
  test::Harness h;
  auto vm = h.create(test::guest_spec("polite", ""));
  h.await_state(VmState::ready);
  h.client->send(vm, stop_atom::value);
  h.await_state(VmState::stopping);
  const VmEvent dead = h.await_state(VmState::dead);
  CHECK(dead.reason == DeathReason::shutdown);
  CHECK(h.console_has("crosvisor-guest: power button"));
}

TEST_CASE("a guest that ignores the power button is terminated after the stop timeout: KILLED") {
  test::require_guest();
  test::Harness h;
  VmSpec spec = test::guest_spec("stubborn", "cv.powerbtn=ignore");
  spec.stop_timeout = 1s;
  auto vm = h.create(spec);
  const pid_t pid = pid_of(h.await_state(VmState::running));
  h.await_state(VmState::ready);
  h.client->send(vm, stop_atom::value);
  const auto asked = std::chrono::steady_clock::now();
  const VmEvent dead = h.await_state(VmState::dead);
  const auto took = std::chrono::steady_clock::now() - asked;
  CHECK(dead.reason == DeathReason::killed);
  CHECK_THAT(dead.detail, Catch::Contains("ignored the stop request"));
  CHECK(took >= 1s);  // the guest had its full stop timeout
  CHECK_FALSE(h.console_has("crosvisor-guest: power button"));
  CHECK_FALSE(test::process_alive(pid));
}

TEST_CASE("a kernel that does not exist fails before anything starts: START_FAILED naming it") {
  test::Harness h;
  VmSpec spec = test::guest_spec("nokernel", "");
  spec.kernel = "/nonexistent/vmlinuz";
  h.create(spec);
  CHECK(h.next_event().state == VmState::starting);
  const VmEvent dead = h.next_event();
  CHECK(dead.state == VmState::dead);
  CHECK(dead.reason == DeathReason::start_failed);
  CHECK(dead.detail == "kernel /nonexistent/vmlinuz: No such file or directory");
  CHECK(h.reactor->live_children() == 0);
}

TEST_CASE("a VMM binary that does not exist is START_FAILED") {
  test::Harness h;
  VmSpec spec = test::guest_spec("nobinary", "");
  spec.vmm_binary = "/nonexistent/qemu";
  h.create(spec);
  const VmEvent dead = h.await_state(VmState::dead);
  CHECK(dead.reason == DeathReason::start_failed);
  CHECK_THAT(dead.detail, Catch::StartsWith("/nonexistent/qemu: No such file"));
}

TEST_CASE("QEMU refusing its arguments is START_FAILED with QEMU's own message") {
  test::require_guest();
  test::Harness h;
  VmSpec spec = test::guest_spec("badaccel", "");
  spec.accel = "no-such-accelerator";
  h.create(spec);
  const VmEvent dead = h.await_state(VmState::dead);
  CHECK(dead.reason == DeathReason::start_failed);
  CHECK_THAT(dead.detail, Catch::StartsWith("exit 1: ") && Catch::Contains("no-such-accelerator"));
}

TEST_CASE(
    "each VM gets its own vsock CID, a fixed one when asked, and the CID returns once the VM is "
    "dead and no handle remains") {
  test::require_guest();
  test::Harness h;
  VmSpec fixed = test::guest_spec("fixedcid", "");
  fixed.cid = 4242;
  auto first = h.create(fixed);
  const VmEvent running = h.await_state(VmState::running);
  CHECK_THAT(running.detail, Catch::EndsWith(", cid 4242"));
  // A second VM asking for the same CID fails to start, naming the conflict.
  VmSpec clash = test::guest_spec("clash", "");
  clash.cid = 4242;
  h.create(clash);
  VmEvent clash_dead = h.await_state(VmState::dead);
  while (clash_dead.vm != "clash")
    clash_dead = h.await_state(VmState::dead);
  CHECK(clash_dead.reason == DeathReason::start_failed);
  CHECK_THAT(clash_dead.detail, Catch::Contains("vsock CID 4242 is already in use by another VM"));
  h.client->send(first, stop_atom::value, kill_atom::value);
  VmEvent first_dead = h.await_state(VmState::dead);
  CHECK(first_dead.vm == "fixedcid");
  // Dead, but a client still holds a handle on it: the CID stays taken (as in AVF).
  VmSpec held = test::guest_spec("held", "");
  held.cid = 4242;
  h.create(held);
  VmEvent held_dead = h.await_state(VmState::dead);
  CHECK(held_dead.vm == "held");
  CHECK_THAT(held_dead.detail, Catch::Contains("vsock CID 4242 is already in use by another VM"));
  // Once every handle is dropped the CID can be granted again.
  first = VmHandle();
  h.handles.clear();
  bool granted = test::eventually(
      [&] {
        VmSpec again = test::guest_spec("again", "");
        again.cid = 4242;
        again.vmm_binary = FD_PROBE_BINARY;
        auto vm = h.create(again);
        VmEvent event = h.next_event();
        while (event.state != VmState::running && event.state != VmState::dead)
          event = h.next_event();
        if (event.state == VmState::dead)
          return false;  // the CID was not back yet
        h.client->send(vm, stop_atom::value, kill_atom::value);
        while (h.next_event().state != VmState::dead) {
        }
        return true;
      },
      10s);
  CHECK(granted);
}

TEST_CASE("a VM ready on a vsock callback has the host listening on that port while it waits") {
  // No guest can connect here (no vsock transport), so this checks the waiting side: the port is
  // taken while the VM waits and free again once it is gone.
  test::TempDir images;
  VmSpec spec;
  spec.name = "vsockready";
  spec.kernel = images.write("vmlinuz", "kernel");
  spec.vmm_binary = FD_PROBE_BINARY;
  spec.ready = VsockReady{47321};
  test::Harness h;
  auto vm = h.create(spec);
  h.await_state(VmState::running);
  const auto port_taken = [] { return !vsock::vsock_listen(47321).has_value(); };
  CHECK(test::eventually(port_taken, 5s));
  h.client->send(vm, stop_atom::value, kill_atom::value);
  CHECK(h.await_state(VmState::dead).reason == DeathReason::killed);
  CHECK(test::eventually([&] { return !port_taken(); }, 5s));
}

TEST_CASE("a crosvm VM where no crosvm is installed fails to start, never running another VMM") {
  test::Harness h;
  VmSpec spec = test::guest_spec("nocrosvm", "");
  spec.vmm = VmmKind::crosvm;
  h.create(spec);
  const VmEvent dead = h.await_state(VmState::dead);
  CHECK(dead.reason == DeathReason::start_failed);
  CHECK_THAT(dead.detail, Catch::StartsWith("crosvm: not found on PATH ("));
  CHECK(h.reactor->live_children() == 0);
}
