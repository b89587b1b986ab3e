// Fleets under the fleet actor (crosvm stand-in): start order, restart intensity, fleet down.
#include <caf/scoped_actor.hpp>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "actors/fleet_actor.hpp"
#include "crosvisor/messages.hpp"
#include "integration/daemon_process.hpp"
#include "integration/guest.hpp"
#include "integration/harness.hpp"
#include "integration/on_demand.hpp"
#include "support/processes.hpp"
#include "support/subprocess.hpp"
#include "support/temp_dir.hpp"

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

FleetStatus status_of(test::Harness& h, const FleetActor& fleet) {
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

FleetStatus down(test::Harness& h, const FleetActor& fleet) {
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

TEST_CASE("the README's main job: the example fleet of real guests up, ready, and down") {
  test::require_guest();
  test::OnDemandSocket own;  // no daemon runs there: the command starts one
  const auto result = own.vm("fleet up --until-ready " + std::string(CROSVISOR_SOURCE_DIR) +
                             "/examples/fleet.toml");
  INFO(result.output);
  CHECK(result.exit_code == 0);
  CHECK_THAT(result.output, Catch::Contains("fleet demo: 4 of 4 ready\n"));
  CHECK_THAT(result.output, Catch::Contains("fleet demo: 0 of 4 ready\n"));
  CHECK(test::processes_with_cmdline("-name web-").empty());
  CHECK(test::processes_with_cmdline("-name db ").empty());
}

TEST_CASE("vm fleet through the daemon: up, status, restart, down, and a bad file starts nothing") {
  test::DaemonProcess daemon;
  auto& dir = daemon.dir;
  const auto vm = [&](const std::string& args) { return daemon.vm(args); };
  std::string member = test::fake_crosvm_toml("x", "", false);
  member = member.substr(member.find('\n') + 1);  // the keys without the name
  const auto file = dir.write("shop.toml", "[fleet]\nname = \"shop\"\n[defaults]\n" + member +
                                               "restart = \"always\"\n"
                                               "[[vm]]\nname = \"db\"\n"
                                               "[[vm]]\nname = \"web-{index}\"\ncount = 3\n"
                                               "after = [\"db\"]\n");
  const auto up = vm("fleet up " + file.string());
  INFO(up.output);
  REQUIRE(up.exit_code == 0);
  CHECK_THAT(up.output, Catch::Contains("fleet shop: 4 of 4 ready"));
  // The daemon owns it: the command has exited and the VMs run on.
  const auto status = nlohmann::json::parse(vm("fleet status --json").output);
  REQUIRE(status.size() == 1);
  CHECK(status[0]["ready"] == 4);
  CHECK_THAT(vm("list").output, Catch::Contains("web-2"));
  CHECK(vm("fleet status -q").output == "shop\n");
  const auto old_pid = status[0]["vms"][1]["pid"].get<int>();
  const auto old_cid = status[0]["vms"][1]["cid"].get<std::uint32_t>();
  // The fleet is found by its VM; the command returns once web-0 is up again, as `vm stop`
  // returns once the VM is dead.
  const auto restart = vm("fleet restart web-0");
  CHECK(restart.exit_code == 0);
  CHECK_THAT(restart.output, Catch::Contains("fleet shop: web-0 is ready again (pid "));
  const auto now = nlohmann::json::parse(vm("fleet status shop --json").output);
  CHECK(now[0]["vms"][1]["state"] == "ready");
  CHECK(now[0]["vms"][1]["pid"] != old_pid);
  // The restarted VM has a fresh CID.
  const auto restarted = nlohmann::json::parse(vm("fleet status shop --json").output);
  CHECK(restarted[0]["vms"][1]["cid"].get<std::uint32_t>() != old_cid);
  const auto down = vm("fleet down");  // the only fleet
  CHECK(down.exit_code == 0);
  CHECK_THAT(down.output, Catch::Contains("fleet shop: 0 of 4 ready"));
  CHECK(test::processes_with_cmdline("--name web-").empty());
  CHECK(vm("fleet status --json").output == "[]\n");

  // Without a condition to be ready on, a VM is up once it runs: counted as ready, not as
  // starting as well.
  const std::string no_condition = member.substr(0, member.find("ready = "));
  const auto plain =
      dir.write("plain.toml", "[fleet]\nname = \"plain\"\n[defaults]\n" + no_condition +
                                  "[[vm]]\nname = \"p-{index}\"\ncount = 2\n");
  const auto plain_up = vm("fleet up " + plain.string());
  INFO(plain_up.output);
  CHECK_THAT(plain_up.output, Catch::Contains("fleet plain: 2/2 ready, 0 starting, 0 waiting"));
  const auto plain_status = nlohmann::json::parse(vm("fleet status plain --json").output);
  CHECK(plain_status[0]["vms"][0]["state"] == "running");
  CHECK(plain_status[0]["vms"][0]["up"] == true);
  CHECK(vm("fleet down plain").exit_code == 0);

  const auto broken = dir.write("broken.toml", "[defaults]\n" + member +
                                                   "[[vm]]\nname = \"a\"\ncpu = 2\n"
                                                   "[[vm]]\nname = \"a\"\n"
                                                   "[[vm]]\nname = \"b-{index}\"\n"
                                                   "[[vm]]\nname = \"c\"\nafter = [\"zz\"]\n"
                                                   "[[vm]]\nname = \"d\"\nrestart = \"often\"\n");
  const auto refused = vm("fleet up " + broken.string());
  CHECK(refused.exit_code == 3);
  INFO(refused.output);
  CHECK(std::count(refused.output.begin(), refused.output.end(), '\n') == 5);
  CHECK(vm("list --json").output == "[]\n");  // nothing started
}
