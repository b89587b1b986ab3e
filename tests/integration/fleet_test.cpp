// Fleets under the fleet actor (crosvm stand-in): start order, restart intensity, fleet down.
#include <caf/scoped_actor.hpp>
#include <catch2/catch.hpp>

#include "actors/fleet_actor.hpp"
#include "crosvisor/messages.hpp"
#include "integration/guest.hpp"
#include "integration/harness.hpp"
#include "support/processes.hpp"

using namespace crosvisor;
using namespace std::chrono_literals;

namespace {

config::FleetVm member(const std::string& name, const std::string& params,
                       config::RestartPolicy policy = config::RestartPolicy::never) {
  config::FleetVm vm;
  vm.spec = test::fake_crosvm_spec(name, params);
  vm.spec.debug = DebugLevel::none;
  vm.restart.policy = policy;
  vm.group = name;
  return vm;
}

FleetStatus status_of(test::Harness& h, const caf::actor& fleet) {
  FleetStatus status;
  h.client->request(fleet, 10s, fleet_status_atom::value)
      .receive([&](const FleetStatus& s) { status = s; },
               [&](caf::error& error) { FAIL(h.system.render(error)); });
  return status;
}

const FleetMemberStatus& vm_in(const FleetStatus& status, const std::string& name) {
  for (const auto& vm : status.vms) {
    if (vm.name == name)
      return vm;
  }
  FAIL("no VM " << name);
  return status.vms.front();
}

FleetStatus down(test::Harness& h, const caf::actor& fleet) {
  FleetStatus status;
  h.client->request(fleet, 60s, stop_atom::value)
      .receive([&](const FleetStatus& s) { status = s; },
               [&](caf::error& error) { FAIL(h.system.render(error)); });
  return status;
}

}  // namespace

TEST_CASE("a crashing VM is restarted until its intensity is spent, then marked failed") {
  test::Harness h;
  config::FleetSpec fleet;
  fleet.name = "crashy";
  fleet.concurrency = 4;
  auto crasher = member("crasher", "fake_crosvm.exit=33 fake_crosvm.after_ms=100",
                        config::RestartPolicy::on_failure);
  crasher.restart.max_restarts = 2;
  crasher.restart.backoff = 50ms;
  fleet.vms.push_back(crasher);
  fleet.vms.push_back(member("steady-0", ""));
  fleet.vms.push_back(member("steady-1", ""));
  auto actor = spawn_fleet(h.system, h.service, fleet);
  CHECK(test::eventually([&] { return vm_in(status_of(h, actor), "crasher").failed; }, 20s));
  const auto status = status_of(h, actor);
  CHECK(vm_in(status, "crasher").restarts == 2);  // started 3 times, died 3 times
  CHECK(vm_in(status, "crasher").last_death == std::optional<DeathReason>(DeathReason::crash));
  CHECK(vm_in(status, "steady-0").state == VmState::ready);  // the others keep running
  CHECK(vm_in(status, "steady-1").state == VmState::ready);
  CHECK(status.failed == 1);
  const auto after = down(h, actor);
  CHECK(vm_in(after, "steady-0").state == VmState::dead);
  CHECK(test::processes_with_cmdline("--name steady-").empty());
  CHECK(test::processes_with_cmdline("--name crasher").empty());
}

TEST_CASE("a fleet starts in `after` order and goes down leaving no process") {
  test::Harness h;
  caf::scoped_actor watcher{h.system};
  config::FleetSpec fleet;
  fleet.name = "ordered";
  fleet.concurrency = 8;
  auto web0 = member("web-0", "");
  auto web1 = member("web-1", "");
  auto lb = member("lb", "");
  web0.after = {"db"};
  web1.after = {"db"};
  lb.after = {"web-0", "web-1"};
  fleet.vms = {lb, web0, web1, member("db", "")};  // file order is not start order
  auto actor = spawn_fleet(h.system, h.service, fleet);
  h.client->send(actor, subscribe_atom::value, caf::actor_cast<caf::actor>(watcher));
  std::vector<std::string> order;  // "name:state" as they happened
  while (std::count_if(order.begin(), order.end(),
                       [](const std::string& e) { return e.ends_with(":ready"); }) < 4) {
    bool timed_out = false;
    watcher->receive(
        [&](const VmEvent& event) {
          order.push_back(event.vm + ":" + std::string(to_string(event.state)));
        },
        caf::after(20s) >> [&] { timed_out = true; });
    REQUIRE_FALSE(timed_out);
  }
  const auto at = [&](const std::string& event) {
    return std::find(order.begin(), order.end(), event) - order.begin();
  };
  CHECK(at("db:ready") < at("web-0:starting"));
  CHECK(at("db:ready") < at("web-1:starting"));
  CHECK(at("web-0:ready") < at("lb:starting"));
  CHECK(at("web-1:ready") < at("lb:starting"));
  const auto status = down(h, actor);
  for (const auto& vm : status.vms)
    CHECK(vm.state == VmState::dead);
  CHECK(test::processes_with_cmdline("--name web-").empty());
  CHECK(h.reactor->live_children() == 0);
}
