// Client handles (actors/client_proxy): a VM lives while a client holds a handle on it, as an
// AVF VM lives while a client holds its binder. Run on the crosvm stand-in: the lifetimes are
// the point here, not the guest.
#include <signal.h>

#include <caf/event_based_actor.hpp>
#include <catch2/catch.hpp>

#include "crosvisor/messages.hpp"
#include "integration/guest.hpp"
#include "integration/harness.hpp"
#include "support/processes.hpp"

using namespace crosvisor;
using namespace std::chrono_literals;

namespace {

constexpr std::uint32_t kCid = 7300;  // fixed: the last test checks that it comes back

// A client that is an ordinary actor of the application and ignores what it hears. (It takes an
// argument: CAF 0.17 function actors spawned without one trip UBSan inside CAF.)
caf::behavior quiet_client(caf::event_based_actor*, int) {
  return {[](const VmEvent&) {}, [](const ConsoleText&) {}};
}

caf::actor spawn_client(caf::actor_system& system) {
  return system.spawn(quiet_client, 0);
}

VmHandle create_for(test::Harness& h, VmSpec spec, caf::actor client) {
  VmHandle handle;
  h.client->request(h.service, caf::infinite, create_atom::value, std::move(spec), client)
      .receive([&](VmHandle created) { handle = created; },
               [&](caf::error& error) { FAIL(h.system.render(error)); });
  return handle;
}

// The VM's own actor, found by name (not a handle: holding it keeps nothing alive).
VmInfo info_of(test::Harness& h, const std::string& name) {
  std::vector<VmActor> vms;
  h.client->request(h.service, 10s, list_atom::value)
      .receive([&](const std::vector<VmActor>& listed) { vms = listed; },
               [&](caf::error& error) { FAIL(h.system.render(error)); });
  VmInfo found;
  for (const auto& vm : vms) {
    h.client->request(vm, 10s, info_atom::value)
        .receive(
            [&](const VmInfo& info) {
              if (info.name == name)
                found = info;
            },
            [](caf::error&) {});
  }
  return found;
}

// What the service lists: each live VM with what it last told of itself.
std::vector<ListedVm> listed(test::Harness& h) {
  std::vector<ListedVm> vms;
  h.client->request(h.service, 10s, list_atom::value, info_atom::value)
      .receive([&](std::vector<ListedVm>& found) { vms = std::move(found); },
               [&](caf::error& error) { FAIL(h.system.render(error)); });
  return vms;
}

VmEvent watch_until(caf::scoped_actor& watcher, VmState state) {
  std::optional<VmEvent> seen;
  while (!seen) {
    bool timed_out = false;
    watcher->receive(
        [&](const VmEvent& event) {
          if (event.state == state)
            seen = event;
        },
        [](const ConsoleText&) {}, caf::after(30s) >> [&] { timed_out = true; });
    REQUIRE_FALSE(timed_out);
  }
  return *seen;
}

pid_t running_pid(caf::scoped_actor& watcher) {
  const VmEvent running = watch_until(watcher, VmState::running);
  return std::stoi(running.detail.substr(4));
}

}  // namespace

TEST_CASE("a client actor that is killed takes its VM down: stopped and reaped") {
  test::Harness h;
  auto client = spawn_client(h.system);
  caf::scoped_actor watcher{h.system};
  auto handle = create_for(h, test::fake_crosvm_spec("orphaned", ""), client);
  watcher->send(handle, subscribe_atom::value, caf::actor_cast<caf::actor>(watcher));
  const pid_t pid = running_pid(watcher);
  watch_until(watcher, VmState::ready);

  caf::anon_send_exit(client, caf::exit_reason::kill);
  const VmEvent dead = watch_until(watcher, VmState::dead);
  CHECK(dead.reason == DeathReason::shutdown);  // the power button, as for any stop
  CHECK_FALSE(test::process_alive(pid));
}

TEST_CASE("the last handle dropped stops the VM") {
  test::Harness h;
  caf::scoped_actor watcher{h.system};
  auto handle = create_for(h, test::fake_crosvm_spec("dropped", ""), caf::actor());
  watcher->send(handle, subscribe_atom::value, caf::actor_cast<caf::actor>(watcher));
  watch_until(watcher, VmState::ready);
  handle = VmHandle();  // nobody holds it any more: the proxy ends as unreachable
  CHECK(watch_until(watcher, VmState::dead).reason == DeathReason::shutdown);
}

TEST_CASE("two clients share a VM: it runs until the second lets go") {
  test::Harness h;
  auto first = spawn_client(h.system);
  auto second = spawn_client(h.system);
  caf::scoped_actor watcher{h.system};
  auto handle = create_for(h, test::fake_crosvm_spec("shared", ""), first);
  VmHandle copy;
  watcher->request(h.service, 10s, dup_atom::value, handle, second)
      .receive([&](VmHandle made) { copy = made; },
               [&](caf::error& error) { FAIL(h.system.render(error)); });
  REQUIRE(copy);
  watcher->send(copy, subscribe_atom::value, caf::actor_cast<caf::actor>(watcher));
  watch_until(watcher, VmState::ready);

  // The handles are still referenced (here, for the clients): what ends each proxy is its
  // client going away.
  caf::anon_send_exit(first, caf::exit_reason::kill);
  std::this_thread::sleep_for(500ms);
  CHECK(info_of(h, "shared").state == VmState::ready);  // the second client still holds it

  caf::anon_send_exit(second, caf::exit_reason::kill);
  CHECK(watch_until(watcher, VmState::dead).reason == DeathReason::shutdown);
}

TEST_CASE("a VM that crashes tells every client, and its CID comes back once both let go") {
  test::Harness h;
  caf::scoped_actor alice{h.system};
  caf::scoped_actor bob{h.system};
  VmSpec spec = test::fake_crosvm_spec("crasher", "fake_crosvm.exit=33 fake_crosvm.after_ms=300");
  spec.cid = kCid;
  auto handle = create_for(h, spec, caf::actor_cast<caf::actor>(alice));
  VmHandle copy;
  alice->request(h.service, 10s, dup_atom::value, handle, caf::actor_cast<caf::actor>(bob))
      .receive([&](VmHandle made) { copy = made; },
               [&](caf::error& error) { FAIL(h.system.render(error)); });
  CHECK(watch_until(alice, VmState::dead).reason == DeathReason::crash);
  CHECK(watch_until(bob, VmState::dead).reason == DeathReason::crash);

  // Dead, but both still hold handles: the CID is still the VM's.
  VmSpec next = test::fake_crosvm_spec("next", "");
  next.cid = kCid;
  caf::scoped_actor carol{h.system};
  auto refused = create_for(h, next, caf::actor_cast<caf::actor>(carol));
  CHECK_THAT(watch_until(carol, VmState::dead).detail, Catch::Contains("already in use"));

  handle = VmHandle();
  copy = VmHandle();
  const bool granted = test::eventually(
      [&] {
        auto again = create_for(h, next, caf::actor_cast<caf::actor>(carol));
        std::optional<VmEvent> outcome;
        while (!outcome) {
          carol->receive(
              [&](const VmEvent& event) {
                if (event.state == VmState::running || event.state == VmState::dead)
                  outcome = event;
              },
              [](const ConsoleText&) {});
        }
        if (outcome->state == VmState::running) {
          carol->send(again, stop_atom::value);
          watch_until(carol, VmState::dead);
          return true;
        }
        return false;
      },
      10s);
  CHECK(granted);
}

TEST_CASE("the service lists each VM as it last told it, never behind what its clients heard") {
  test::Harness h;
  caf::scoped_actor watcher{h.system};
  auto handle = create_for(h, test::fake_crosvm_spec("told", ""), caf::actor());
  // At once: listed, whether it has told anything yet or not (a list asks such a VM itself).
  REQUIRE(listed(h).size() == 1);
  watcher->send(handle, subscribe_atom::value, caf::actor_cast<caf::actor>(watcher));
  watch_until(watcher, VmState::ready);
  auto vms = listed(h);
  REQUIRE(vms.size() == 1);
  REQUIRE(vms[0].last);
  const VmInfo& told = vms[0].last->info;
  CHECK(told.state == VmState::ready);
  // The same as the VM answers itself, but the uptime, which moves on by itself.
  const VmInfo asked = info_of(h, "told");
  CHECK(told.name == asked.name);
  CHECK(told.pid == asked.pid);
  CHECK(told.cid == asked.cid);
  CHECK(told.started_at == asked.started_at);
  CHECK(told.kernel == asked.kernel);
  CHECK(told.disks == asked.disks);
  CHECK(told.vmm == asked.vmm);
  CHECK(told.pid.has_value());
  CHECK(told.cid.has_value());
  const auto now = std::chrono::steady_clock::now();
  CHECK(vms[0].last->uptime_ms(now + 1s) == vms[0].last->uptime_ms(now) + 1000);

  // Dead: gone from the list before any client hears of it.
  handle = VmHandle();
  watch_until(watcher, VmState::dead);
  CHECK(listed(h).empty());
}
