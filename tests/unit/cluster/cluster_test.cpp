// A host's part of a cluster: the fence clock, host records and names (pure), and the etcd
// client and host agent against a real etcd (Debian's etcd-server) on loopback, with mutual TLS
// too.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "cluster/coordinator.hpp"
#include "cluster/etcd_client.hpp"
#include "cluster/fence_clock.hpp"
#include "cluster/fence_keeper.hpp"
#include "cluster/host_agent.hpp"
#include "cluster/host_record.hpp"
#include "cluster/placement.hpp"
#include "support/etcd_process.hpp"
#include "support/processes.hpp"
#include "support/temp_dir.hpp"

using namespace crosvisor;
using namespace std::chrono_literals;
using cluster::Compare;
using cluster::Operation;
using Clock = cluster::FenceClock::Clock;

namespace {

cluster::EtcdClient client_of(const std::string& endpoint, cluster::EtcdTls tls = {}) {
  auto client = cluster::EtcdClient::open({{endpoint}, std::move(tls), 2000ms});
  REQUIRE(client);
  return std::move(*client);
}

cluster::HostRecord host(const std::string& name) {
  cluster::HostRecord record;
  record.name = name;
  record.cpus = 2;
  record.memory_mib = 4096;
  record.vmms = {"qemu"};
  record.version = "test";
  return record;
}

}  // namespace

TEST_CASE("the fence falls due a TTL less the margin after the last renewal sent that succeeded") {
  CHECK_FALSE(cluster::FenceClock::make(10s, 10s));
  CHECK_FALSE(cluster::FenceClock::make(10s, 0s));
  auto clock = cluster::FenceClock::make(10s, 3s);
  REQUIRE(clock);
  CHECK_FALSE(clock->deadline());
  CHECK_FALSE(clock->expired(Clock::now()));
  const auto t0 = Clock::now();
  clock->renewed(t0);
  CHECK(*clock->deadline() == t0 + 7s);
  clock->renewed(t0 + 2s);
  CHECK(*clock->deadline() == t0 + 9s);
  clock->renewed(t0 + 1s);  // an older renewal answered late: changes nothing
  CHECK(*clock->deadline() == t0 + 9s);
  CHECK_FALSE(clock->expired(t0 + 8s));
  CHECK(clock->expired(t0 + 9s));
  CHECK(clock->renew_every() == 2s);
}

TEST_CASE("host records round-trip, names are DNS labels, and hosts are up or lost") {
  auto record = host("h-1");
  record.lease = 0x7fffffffffffff01;
  auto back = cluster::host_record_from(cluster::to_json(record));
  REQUIRE(back);
  CHECK(back->lease == record.lease);  // 64 bits survive JSON
  CHECK(back->vmms == record.vmms);
  CHECK_FALSE(cluster::host_record_from(nlohmann::json{{"name", "x"}}));
  CHECK(cluster::check_host_name("host-7"));
  for (const std::string& bad :
       std::vector<std::string>{"", "-a", "a-", "Host", "a_b", std::string(64, 'a')})
    CHECK_FALSE(cluster::check_host_name(bad));

  const auto text = [](const cluster::HostRecord& r) { return cluster::to_json(r).dump(); };
  const auto statuses =
      cluster::host_statuses({text(host("a")), text(host("b")), "not json"}, {text(host("b"))});
  REQUIRE(statuses.size() == 2);
  CHECK(statuses[0].record.name == "a");
  CHECK_FALSE(statuses[0].up);
  CHECK(statuses[1].up);
  CHECK(cluster::prefix_end("/crosvisor/hosts/") == "/crosvisor/hosts0");
}

TEST_CASE("the etcd client leases, reads, writes and guards transactions on a real etcd") {
  test::EtcdProcess etcd;
  auto client = client_of(etcd.endpoint());
  auto lease = client.grant(5s);
  REQUIRE(lease);
  REQUIRE(client.put("/t/a", "1", *lease));
  REQUIRE(client.put("/t/b", std::string("\0\xff", 2)));  // any bytes
  REQUIRE(client.put("/u", "elsewhere"));
  auto all = client.get_prefix("/t/");
  REQUIRE(all);
  REQUIRE(all->kvs.size() == 2);
  CHECK(all->kvs[0].lease == *lease);
  CHECK(all->kvs[1].value == std::string("\0\xff", 2));
  CHECK(all->revision >= all->kvs[1].mod_revision);
  auto ttl = client.time_to_live(*lease);
  REQUIRE(ttl);
  CHECK(*ttl > 0);
  CHECK(client.keep_alive(*lease).value_or(0) == 5);

  // Create-if-absent: once.
  const cluster::Txn create{{{"/t/c", Compare::Target::create_revision, {}, 0}},
                            {{Operation::Kind::put, "/t/c", "first", 0}},
                            {}};
  CHECK(client.commit(create).value_or(false));
  CHECK_FALSE(client.commit(create).value_or(true));
  // A guard on a value: the failure branch runs when it does not hold.
  const cluster::Txn guarded{{{"/t/c", Compare::Target::value, "other", 0}},
                             {{Operation::Kind::put, "/t/c", "won", 0}},
                             {{Operation::Kind::remove, "/t/b", {}, 0}}};
  CHECK_FALSE(client.commit(guarded).value_or(true));
  CHECK(client.get("/t/c")->kvs.at(0).value == "first");
  CHECK(client.get("/t/b")->kvs.empty());

  // A revoked lease takes its keys; renewing it says it is gone.
  REQUIRE(client.revoke(*lease));
  CHECK(client.get("/t/a")->kvs.empty());
  CHECK(client.keep_alive(*lease).error().kind == ErrorKind::not_found);
  CHECK(client.time_to_live(*lease).error().kind == ErrorKind::not_found);

  // Another endpoint first that does not answer: the next one does.
  auto failover = cluster::EtcdClient::open({{"http://127.0.0.1:1", etcd.endpoint()}, {}, 500ms});
  REQUIRE(failover);
  CHECK(failover->get("/u")->kvs.at(0).value == "elsewhere");
  CHECK(failover->endpoint() == etcd.endpoint());

  // A read that fails is an error (unknown), never an empty answer.
  etcd.kill();
  auto unknown = client.get_prefix("/t/");
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().kind == ErrorKind::io);
  CHECK_THAT(unknown.error().message, Catch::Contains(etcd.endpoint()));

  CHECK(cluster::EtcdClient::open({{"127.0.0.1:2379"}, {}, 1s}).error().kind ==
        ErrorKind::invalid_config);
  CHECK_THAT(cluster::EtcdClient::open({{"https://x"}, {"/nonexistent/ca.crt", {}, {}}, 1s})
                 .error()
                 .message,
             Catch::Contains("/nonexistent/ca.crt is missing"));
}

TEST_CASE("over mutual TLS only a client certificate of the cluster's CA is served") {
  test::TempDir dir;
  const auto certs = test::make_test_certificates(dir.path());
  test::EtcdProcess etcd(certs);
  auto member = client_of(etcd.endpoint(), {certs.ca, certs.client_cert, certs.client_key});
  auto put = member.put("/k", "v");
  INFO((put ? std::string() : put.error().message));
  REQUIRE(put);
  CHECK(member.get("/k")->kvs.at(0).value == "v");
  auto anonymous = client_of(etcd.endpoint(), {certs.ca, {}, {}});
  CHECK(anonymous.get("/k").error().kind == ErrorKind::io);
  auto stranger = client_of(etcd.endpoint(), {certs.ca, certs.stranger_cert, certs.stranger_key});
  CHECK(stranger.get("/k").error().kind == ErrorKind::io);
  auto unverified = client_of(etcd.endpoint(), {{}, certs.client_cert, certs.client_key});
  CHECK(unverified.get("/k").error().kind == ErrorKind::io);  // the server is not trusted
}

TEST_CASE(
    "a host joins with a lease, one name is one live host, leaving removes its live record, "
    "and a host cut off from etcd fences itself before its lease can expire, then joins again") {
  test::EtcdProcess etcd;
  auto reader = client_of(etcd.endpoint());
  std::atomic<int> fenced{0};
  std::atomic<std::int64_t> rejoined{0};
  Clock::time_point fenced_at{};
  cluster::HostAgent::Options options;
  options.etcd = {{etcd.endpoint()}, {}, 500ms};
  options.record = host("h1");
  options.ttl = 3s;
  options.margin = 1s;
  options.fence = [&] {
    fenced_at = Clock::now();
    ++fenced;
  };
  options.joined = [&](std::int64_t lease) { rejoined = lease; };
  auto agent = cluster::HostAgent::join(options);
  REQUIRE(agent);
  const std::int64_t first_lease = (*agent)->lease();
  auto alive = reader.get("/crosvisor/hosts/h1");
  REQUIRE(alive->kvs.size() == 1);
  CHECK(alive->kvs[0].lease == first_lease);
  CHECK(reader.get("/crosvisor/known/h1")->kvs.size() == 1);

  // A second host of that name waits for the first one's lease, then is refused.
  const auto started = Clock::now();
  auto twin = cluster::HostAgent::join(options);
  REQUIRE_FALSE(twin);
  CHECK(twin.error().kind == ErrorKind::conflict);
  CHECK(Clock::now() - started >= 3s);
  // Renewed all along: the first is still there, with its lease, never fenced.
  CHECK(reader.get("/crosvisor/hosts/h1")->kvs.at(0).lease == first_lease);
  CHECK(fenced == 0);

  // Cut off: etcd frozen, every renewal times out. The fence falls due 2 s after the last
  // renewal sent; the lease could not have expired before 3 s after it was received.
  ::kill(etcd.pid(), SIGSTOP);
  const auto frozen = Clock::now();
  REQUIRE(test::eventually([&] { return fenced == 1; }, 5s));
  const auto after = std::chrono::duration_cast<std::chrono::milliseconds>(fenced_at - frozen);
  // Safe: the last renewal etcd received was at most one renewal period (600 ms) before the
  // freeze, so its lease lives at least 2.4 s past it.
  CHECK(after < 2400ms);
  WARN("fenced " << after.count() << " ms after etcd froze (TTL 3 s, margin 1 s)");
  ::kill(etcd.pid(), SIGCONT);
  REQUIRE(test::eventually([&] { return rejoined != 0; }, 10s));
  CHECK(rejoined != first_lease);
  CHECK(reader.get("/crosvisor/hosts/h1")->kvs.at(0).lease == rejoined);
  CHECK(fenced == 1);  // once per lease

  agent->reset();  // leaves
  CHECK(reader.get("/crosvisor/hosts/h1")->kvs.empty());
  CHECK(reader.get("/crosvisor/known/h1")->kvs.size() == 1);
}

TEST_CASE(
    "coordinator writes: placements in batches with their events, only a stale one refused, "
    "and none of a deposed coordinator") {
  test::EtcdProcess etcd;
  auto client = client_of(etcd.endpoint());
  const auto decisions = [](int n, const std::string& to) {
    std::vector<cluster::Decision> all;
    for (int i = 0; i < n; ++i)
      all.push_back({{"f", "v" + std::to_string(i)}, std::nullopt, to, "least loaded"});
    return all;
  };
  const auto events = [&] { return client.get_prefix(cluster::kEventsPrefix)->kvs.size(); };
  REQUIRE(client.put(cluster::kCoordinatorKey, "c1"));
  std::uint64_t numbered = 0;

  // More than one transaction's worth (etcd takes at most 128 operations in each).
  auto first = cluster::write_placements(client, "c1", decisions(120, "h1"), {}, numbered);
  REQUIRE(first);
  CHECK(first->placed == 120);
  CHECK(first->refused == 0);
  CHECK(numbered == 120);
  CHECK(events() == 120);
  std::map<cluster::VmKey, std::int64_t> revision;
  const auto placed = client.get_prefix(cluster::kPlacementsPrefix);
  REQUIRE(placed);
  for (const auto& kv : placed->kvs)
    revision[*cluster::vm_of_key(kv.key, cluster::kPlacementsPrefix)] = kv.mod_revision;
  REQUIRE(revision.size() == 120);

  // One placement changed after it was read: only its move is refused, and it has no event.
  REQUIRE(client.put(cluster::placement_key({"f", "v7"}), "h3"));
  auto moved = cluster::write_placements(client, "c1", decisions(60, "h2"), revision, numbered);
  REQUIRE(moved);
  CHECK(moved->placed == 59);
  CHECK(moved->refused == 1);
  CHECK(events() == 179);
  CHECK(client.get(cluster::placement_key({"f", "v7"}))->kvs.at(0).value == "h3");
  CHECK(client.get(cluster::placement_key({"f", "v8"}))->kvs.at(0).value == "h2");

  // Deposed: nothing it writes lands.
  REQUIRE(client.put(cluster::kCoordinatorKey, "c2"));
  auto deposed = cluster::write_placements(client, "c1", decisions(10, "h4"), {}, numbered);
  REQUIRE(deposed);
  CHECK(deposed->placed == 0);
  CHECK(deposed->refused == 10);
  CHECK(events() == 179);
  CHECK(client.get(cluster::placement_key({"f", "v0"}))->kvs.at(0).value == "h2");
}

TEST_CASE("placement: least loaded allowed host, spread replicas, lost hosts by policy") {
  using cluster::Want;
  const std::vector<cluster::LiveHost> hosts = {
      {"h2", {"crosvm"}, 2}, {"h1", {"qemu", "crosvm"}, 2}, {"h3", {"crosvm"}, 4}};
  std::vector<Want> wants;
  for (int i = 0; i < 3; ++i)
    wants.push_back(
        {{"shop", "web-" + std::to_string(i)}, "web-{index}", {}, true, false, "crosvm"});
  wants.push_back({{"shop", "db"}, "db", {}, false, true, "qemu"});  // only h1 has QEMU
  wants.push_back({{"shop", "pinned"}, "pinned", {"h2"}, false, false, "crosvm"});

  auto plan = cluster::plan_placements(wants, hosts, {});
  REQUIRE(plan.place.size() == 5);
  std::map<std::string, std::string> where;
  for (const auto& decision : plan.place) {
    CHECK_FALSE(decision.from);
    where[decision.vm.second] = decision.to;
  }
  // The replicas on three different hosts; db where QEMU is; pinned where it is told.
  CHECK(std::set<std::string>{where["web-0"], where["web-1"], where["web-2"]}.size() == 3);
  CHECK(where["db"] == "h1");
  CHECK(where["pinned"] == "h2");
  CHECK(plan.stuck.empty());
  // The same view, the same plan.
  CHECK(cluster::plan_placements(wants, hosts, {}).place.size() == 5);
  CHECK(cluster::plan_placements(wants, hosts, {}).place[0].to == plan.place[0].to);

  // Kept where they are while their hosts live; a VM of a fleet no longer wanted is dropped.
  std::map<cluster::VmKey, std::string> current;
  for (const auto& decision : plan.place)
    current[decision.vm] = decision.to;
  current[{"gone", "x"}] = "h1";
  auto steady = cluster::plan_placements(wants, hosts, current);
  CHECK(steady.place.empty());
  CHECK(steady.drop == std::vector<cluster::VmKey>{{"gone", "x"}});

  // h1 is lost: its crosvm VM moves to the least loaded other host; db (wait) stays lost.
  current.erase({"gone", "x"});
  const std::vector<cluster::LiveHost> without_h1 = {hosts[0], hosts[2]};
  auto lost = cluster::plan_placements(wants, without_h1, current);
  for (const auto& decision : lost.place) {
    CHECK(decision.from == "h1");
    CHECK(decision.to != "h1");
    CHECK_THAT(decision.why, Catch::Contains("its host h1 is lost"));
  }
  const bool web_on_h1 = std::any_of(current.begin(), current.end(), [](const auto& entry) {
    return entry.first.second.rfind("web-", 0) == 0 && entry.second == "h1";
  });
  CHECK(lost.place.size() == (web_on_h1 ? 1u : 0u));
  REQUIRE(lost.stuck.size() == 1);
  CHECK(lost.stuck[0].vm.second == "db");
  CHECK_THAT(lost.stuck[0].why, Catch::Contains("waits for its host h1"));

  // Nowhere to go: said, not forced.
  auto none = cluster::plan_placements({wants[3]}, without_h1, {});
  REQUIRE(none.stuck.size() == 1);
  CHECK_THAT(none.stuck[0].why, Catch::Contains("no live host may run it"));
  CHECK(cluster::plan_placements({wants[0]}, {}, {}).stuck.at(0).why == "no host is up");
  // Spread with too few hosts: placed anyway, and said.
  std::vector<Want> many(4, wants[0]);
  for (int i = 0; i < 4; ++i)
    many[i].vm.second = "r" + std::to_string(i);
  auto crowded = cluster::plan_placements(many, hosts, {});
  CHECK(crowded.place.size() == 4);
  CHECK_THAT(crowded.place[3].why, Catch::Contains("too few hosts"));
}

TEST_CASE(
    "the fence keeper, a process of its own, kills the VMMs it watches once the deadline "
    "passes, and only those") {
  auto started = cluster::FenceKeeper::start();
  REQUIRE(started);
  std::optional<cluster::FenceKeeper> keeper;
  keeper.emplace(std::move(*started));
  CHECK(test::process_alive(keeper->pid()));
  const auto spawn_sleeper = [] {
    const pid_t child = ::fork();
    if (child == 0) {
      ::execl("/bin/sleep", "sleep", "60", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    return child;
  };
  const pid_t watched = spawn_sleeper();
  const pid_t other = spawn_sleeper();
  REQUIRE(test::eventually([&] { return !test::processes_with_cmdline("sleep 60").empty(); }, 5s));
  std::this_thread::sleep_for(100ms);  // exec'd: its start time is final
  REQUIRE(keeper->watch(watched));
  keeper->set_deadline(Clock::now() + 1h);  // renewed well ahead: nothing happens
  std::this_thread::sleep_for(300ms);
  CHECK(test::process_alive(watched));
  keeper->set_deadline(Clock::now() + 200ms);  // no renewal came
  REQUIRE(test::eventually([&] { return !test::process_alive(watched); }, 5s));
  CHECK(keeper->kills() == 1);
  CHECK(test::process_alive(other));  // never one it was not told of
  ::waitpid(watched, nullptr, 0);
  ::kill(other, SIGKILL);
  ::waitpid(other, nullptr, 0);
  const pid_t keeper_pid = keeper->pid();
  keeper.reset();  // gone with its owner
  CHECK_FALSE(test::process_alive(keeper_pid));
}

TEST_CASE("placement: a VM with after waits until those VMs are up, wherever they run") {
  const std::vector<cluster::LiveHost> hosts = {{"h1", {"crosvm"}, 2}, {"h2", {"crosvm"}, 2}};
  cluster::Want db{{"shop", "db"}, "db", {}, false, false, "crosvm", {}};
  cluster::Want web{{"shop", "web"}, "web", {}, false, false, "crosvm", {"db"}};
  auto first = cluster::plan_placements({db, web}, hosts, {});
  REQUIRE(first.place.size() == 1);
  CHECK(first.place[0].vm.second == "db");
  REQUIRE(first.stuck.size() == 1);
  CHECK(first.stuck[0].why == "waits for db to be up (after)");
  const std::map<cluster::VmKey, std::string> placed = {{{"shop", "db"}, first.place[0].to}};
  CHECK(cluster::plan_placements({db, web}, hosts, placed).place.empty());  // placed, not up
  auto then = cluster::plan_placements({db, web}, hosts, placed, {{"shop", "db"}});
  REQUIRE(then.place.size() == 1);
  CHECK(then.place[0].vm.second == "web");
}
