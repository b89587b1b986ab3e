// A cluster under fire, on one machine (docs/cluster.md): three etcd members and four crosvisord
// hosts, each in a network namespace of its own, joined by a bridge in a namespace of its own,
// with no route anywhere else. VMs on the crosvm stand-in. A watcher samples every VM's VMM
// processes every 100 ms for the whole test. Faults: a host partitioned (its link down) and
// healed, the coordinator's crosvisord killed with SIGKILL, the etcd leader killed. The harness
// removes every namespace, process and file it made, however the test ends.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "integration/daemon_process.hpp"
#include "integration/guest.hpp"
#include "support/processes.hpp"
#include "support/subprocess.hpp"
#include "support/temp_dir.hpp"
#include "support/twice_watcher.hpp"

using namespace crosvisor;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

void sh(const std::string& command) {
  const auto result = test::run_command(command);
  INFO(command << ": " << result.output);
  REQUIRE(result.exit_code == 0);
}

// The namespaces, links, etcd members and crosvisord hosts.
class Lab {
 public:
  static constexpr int kHosts = 4;
  static constexpr int kMembers = 3;

  Lab() : tag_("cvf" + std::to_string(::getpid())) {
    remove_stale();
    sh("ip netns add " + bridge_ns());
    sh("ip netns exec " + bridge_ns() + " ip link set lo up");
    sh("ip netns exec " + bridge_ns() + " ip link add br0 type bridge");
    sh("ip netns exec " + bridge_ns() + " ip link set br0 up");
    for (int i = 1; i <= kHosts; ++i) {
      const std::string ns = host_ns(i);
      sh("ip netns add " + ns);
      sh("ip netns exec " + ns + " ip link set lo up");
      // One end in the host, the other on the bridge: made in the host's namespace, so nothing
      // is ever on the machine's own.
      sh("ip netns exec " + ns + " ip link add eth0 type veth peer name " + port(i) + " netns " +
         bridge_ns());
      sh("ip netns exec " + ns + " ip addr add " + address(i) + "/24 dev eth0");
      sh("ip netns exec " + ns + " ip link set eth0 up");
      sh("ip netns exec " + bridge_ns() + " ip link set " + port(i) + " master br0");
      sh("ip netns exec " + bridge_ns() + " ip link set " + port(i) + " up");
    }
    std::string initial;
    for (int i = 1; i <= kMembers; ++i)
      initial += (i > 1 ? "," : "") + member(i) + "=http://" + address(i) + ":2380";
    for (int i = 1; i <= kMembers; ++i) {
      members_[i] = std::make_unique<test::Subprocess>(std::vector<std::string>{
          "ip", "netns", "exec", host_ns(i), "/usr/bin/etcd", "--name=" + member(i),
          "--data-dir=" + (dir_ / member(i)).string(),
          "--listen-client-urls=http://" + address(i) + ":2379",
          "--advertise-client-urls=http://" + address(i) + ":2379",
          "--listen-peer-urls=http://" + address(i) + ":2380",
          "--initial-advertise-peer-urls=http://" + address(i) + ":2380",
          "--initial-cluster=" + initial, "--initial-cluster-state=new", "--pre-vote=true",
          // Its log in a file: a pipe nobody reads would fill and stop it.
          "--logger=zap", "--log-outputs=" + (dir_ / (member(i) + ".log")).string()});
    }
    REQUIRE(test::eventually([&] { return etcdctl(4, "endpoint health").exit_code == 0; }, 30s));
    for (int i = 1; i <= kHosts; ++i)
      start_host(i);
  }

  ~Lab() {
    hosts_.clear();  // each daemon SIGKILLed and reaped; its VMMs die with it
    members_.clear();
    for (int i = 1; i <= kHosts; ++i)
      (void)test::run_command("ip netns del " + host_ns(i));
    (void)test::run_command("ip netns del " + bridge_ns());
  }

  // Namespaces of a run that could not clean up (aborted: no destructor ran), known by the pid
  // in their names being no process's any more.
  static void remove_stale() {
    const auto listed = test::run_command("ip netns list");
    std::size_t start = 0;
    while (start < listed.output.size()) {
      const auto end = listed.output.find('\n', start);
      const std::string line = listed.output.substr(start, end - start);
      start = end == std::string::npos ? listed.output.size() : end + 1;
      const std::string name = line.substr(0, line.find(' '));
      if (!name.starts_with("cvf") || name.find('-') == std::string::npos)
        continue;
      const std::string pid = name.substr(3, name.find('-') - 3);
      if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos)
        continue;
      if (!std::filesystem::exists("/proc/" + pid))
        (void)test::run_command("ip netns del " + name);
    }
  }

  void start_host(int i) {
    const auto socket = socket_of(i);
    std::filesystem::remove(socket);
    hosts_[i] = std::make_unique<test::Subprocess>(
        std::vector<std::string>{"ip",
                                 "netns",
                                 "exec",
                                 host_ns(i),
                                 CROSVISORD_BINARY,
                                 "--socket",
                                 socket.string(),
                                 "--runtime-dir",
                                 (dir_ / ("run-" + name(i))).string(),
                                 "--state-dir",
                                 (dir_ / ("state-" + name(i))).string(),
                                 "--crosvm",
                                 FAKE_CROSVM_BINARY,
                                 "--cluster",
                                 endpoints(),
                                 "--host-name",
                                 name(i),
                                 "--cluster-ttl",
                                 "10",
                                 "--cluster-margin",
                                 "3"});
    REQUIRE(hosts_[i]->wait_for_line("serving ", 40s));
  }

  test::Subprocess& host(int i) { return *hosts_.at(i); }
  test::Subprocess& etcd_member(int i) { return *members_.at(i); }
  // `vm ARGS` asked of host i.
  test::CommandResult vm(int i, const std::string& args) const {
    return test::run_command("CROSVISOR_SOCKET=" + socket_of(i).string() + " " + VM_BINARY + " " +
                             args);
  }
  // etcdctl inside host i's namespace.
  test::CommandResult etcdctl(int i, const std::string& args) const {
    return test::run_command("ip netns exec " + host_ns(i) +
                             " env ETCDCTL_API=3 etcdctl --dial-timeout=2s --command-timeout=3s "
                             "--endpoints=" +
                             endpoints() + " " + args);
  }
  void partition(int i) {
    sh("ip netns exec " + bridge_ns() + " ip link set " + port(i) + " down");
  }
  void heal(int i) { sh("ip netns exec " + bridge_ns() + " ip link set " + port(i) + " up"); }
  // The etcd member that leads now (1..3), or 0.
  int leader() const {
    const auto out = etcdctl(4, "endpoint status -w json");
    if (out.exit_code != 0)
      return 0;
    const json all = json::parse(out.output, nullptr, false);
    if (all.is_discarded())
      return 0;
    for (const auto& endpoint : all) {
      const auto& status = endpoint["Status"];
      if (status["leader"] == status["header"]["member_id"]) {
        const std::string at = endpoint["Endpoint"];
        for (int i = 1; i <= kMembers; ++i) {
          if (at.find(address(i) + ":") != std::string::npos)
            return i;
        }
      }
    }
    return 0;
  }
  std::filesystem::path dir() const { return dir_.path(); }
  static std::string name(int i) { return "h" + std::to_string(i); }

 private:
  std::string bridge_ns() const { return tag_ + "-br"; }
  std::string host_ns(int i) const { return tag_ + "-" + name(i); }
  std::string port(int i) const { return "p" + std::to_string(i); }
  static std::string address(int i) { return "198.18.250." + std::to_string(i); }
  static std::string member(int i) { return "e" + std::to_string(i); }
  std::string endpoints() const {
    std::string all;
    for (int i = 1; i <= kMembers; ++i)
      all += (i > 1 ? "," : "") + std::string("http://") + address(i) + ":2379";
    return all;
  }
  std::filesystem::path socket_of(int i) const { return dir_ / (name(i) + ".sock"); }

  std::string tag_;
  test::TempDir dir_;
  std::map<int, std::unique_ptr<test::Subprocess>> members_;
  std::map<int, std::unique_ptr<test::Subprocess>> hosts_;
};

// Each ready VM's host, asked of host i.
std::map<std::string, std::string> ready_on(const Lab& lab, int i) {
  const auto out = lab.vm(i, "fleet status --cluster shop --json");
  std::map<std::string, std::string> where;
  if (out.exit_code != 0)
    return where;
  const json fleets = json::parse(out.output, nullptr, false);
  if (fleets.is_discarded())
    return where;
  for (const auto& vm : fleets.at(0)["vms"]) {
    if (vm["state"] == "ready" && vm["host"].is_string())
      where[vm["name"]] = vm["host"];
  }
  return where;
}

std::int64_t ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               start)
      .count();
}

}  // namespace

TEST_CASE(
    "a cluster under fire: four namespace hosts on three etcd members through a partition, a "
    "killed coordinator, a killed etcd leader and a frozen crosvisord, and no VM runs twice") {
  if (::geteuid() != 0) {
    WARN("skipped: network namespaces need root");
    return;
  }
  Lab lab;
  REQUIRE(test::eventually(
      [&] {
        const auto out = lab.vm(4, "hosts --json");
        const json hosts = json::parse(out.output, nullptr, false);
        return !hosts.is_discarded() && hosts.size() == Lab::kHosts &&
               std::all_of(hosts.begin(), hosts.end(),
                           [](const json& host) { return host["state"] == "up"; });
      },
      20s));
  std::string keys = test::fake_crosvm_toml("x", "", false);
  keys = keys.substr(keys.find('\n') + 1);
  const auto file = lab.dir() / "shop.toml";
  {
    std::ofstream out(file);
    out << "[fleet]\nname = \"shop\"\n[defaults]\n"
        << keys << "[[vm]]\nname = \"c-{index}\"\ncount = 8\nspread = true\n";
  }
  std::vector<std::string> names;
  for (int i = 0; i < 8; ++i)
    names.push_back("c-" + std::to_string(i));
  test::TwiceWatcher watcher(names);
  const auto up = lab.vm(1, "fleet up --cluster " + file.string());
  INFO(up.output);
  REQUIRE(up.exit_code == 0);
  std::map<std::string, std::string> where;
  REQUIRE(test::eventually(
      [&] {
        where = ready_on(lab, 3);
        return where.size() == 8;
      },
      30s));

  // 1. h2 cut off: it fences itself (7 s after its last renewal), and only then, once its lease
  // is out (10 s), are its VMs placed again. The minority side cannot write.
  const auto cut = std::chrono::steady_clock::now();
  lab.partition(2);
  REQUIRE(lab.host(2).wait_for_line("fenced itself", 15s));
  const auto fenced_ms = ms_since(cut);
  const auto refused = lab.vm(2, "fleet up --cluster " + file.string());
  CHECK(refused.exit_code != 0);  // cannot reach a quorum
  REQUIRE(test::eventually(
      [&] {
        where = ready_on(lab, 1);
        return where.size() == 8 && std::none_of(where.begin(), where.end(), [](const auto& entry) {
                 return entry.second == "h2";
               });
      },
      30s));
  const auto moved_ms = ms_since(cut);
  // 2. Healed: h2 joins again and starts nothing (what it ran lives elsewhere now).
  lab.heal(2);
  REQUIRE(lab.host(2).wait_for_line("part of the cluster again", 30s));
  std::this_thread::sleep_for(3s);
  INFO(lab.vm(2, "fleet status --cluster shop").output);
  CHECK(ready_on(lab, 2) == where);

  // 3. The coordinator's crosvisord killed: another host takes over and its VMs move.
  const auto holder = lab.etcdctl(4, "get /crosvisor/coordinator --print-value-only");
  REQUIRE(holder.exit_code == 0);
  const std::string coordinator = holder.output.substr(0, holder.output.find('\n'));
  const int victim = coordinator.back() - '0';
  REQUIRE(victim >= 1);
  REQUIRE(victim <= 4);
  const auto killed = std::chrono::steady_clock::now();
  lab.host(victim).signal(SIGKILL);
  lab.host(victim).wait_exit(10s);
  const int asker = victim == 4 ? 3 : 4;
  REQUIRE(test::eventually(
      [&] {
        where = ready_on(lab, asker);
        return where.size() == 8 &&
               std::none_of(where.begin(), where.end(),
                            [&](const auto& entry) { return entry.second == Lab::name(victim); });
      },
      40s));
  const auto failover_ms = ms_since(killed);
  const auto successor = lab.etcdctl(4, "get /crosvisor/coordinator --print-value-only");
  CHECK(successor.output.substr(0, successor.output.find('\n')) != coordinator);

  // 4. The etcd leader killed: a new leader, and not one fence or move.
  const int leader = lab.leader();
  REQUIRE(leader != 0);
  const auto before = ready_on(lab, asker);
  lab.etcd_member(leader).signal(SIGKILL);
  std::this_thread::sleep_for(15s);
  CHECK(ready_on(lab, asker) == before);
  for (int i = 1; i <= Lab::kHosts; ++i) {
    if (i != victim)  // (h2's fence of step 1 was read already)
      CHECK_FALSE(lab.host(i).wait_for_line("fenced itself", 200ms));
  }

  // 5. A host's crosvisord frozen (SIGSTOP): its own fence timer is frozen with it, but its
  // fence keeper, a process of its own, kills its VMMs before its lease can expire, and only
  // then are they placed elsewhere.
  int frozen = 0;
  std::vector<std::string> on_frozen;
  for (int i = 1; i <= Lab::kHosts && frozen == 0; ++i) {
    if (i == victim || i == asker)
      continue;
    for (const auto& [vm, host] : before) {
      if (host == Lab::name(i))
        on_frozen.push_back(vm);
    }
    if (!on_frozen.empty())
      frozen = i;
  }
  REQUIRE(frozen != 0);
  const auto stopped = std::chrono::steady_clock::now();
  lab.host(frozen).signal(SIGSTOP);
  REQUIRE(test::eventually(
      [&] {
        return std::all_of(on_frozen.begin(), on_frozen.end(), [](const std::string& vm) {
          return test::processes_with_cmdline("--name " + vm + " ").empty();
        });
      },
      15s));
  const auto kept_ms = ms_since(stopped);
  REQUIRE(test::eventually(
      [&] {
        where = ready_on(lab, asker);
        return where.size() == 8 &&
               std::none_of(where.begin(), where.end(),
                            [&](const auto& entry) { return entry.second == Lab::name(frozen); });
      },
      40s));
  const auto frozen_moved_ms = ms_since(stopped);
  lab.host(frozen).signal(SIGCONT);
  CHECK(lab.host(frozen).wait_for_line("part of the cluster again", 30s));

  WARN("frozen crosvisord: its VMMs killed by its fence keeper after "
       << kept_ms << " ms, ready elsewhere after " << frozen_moved_ms << " ms");
  CHECK(kept_ms < 10'000);  // before its lease could expire
  WARN("partitioned host fenced after " << fenced_ms << " ms, its VMs ready elsewhere after "
                                        << moved_ms << " ms; coordinator killed: its VMs ready "
                                        << "elsewhere after " << failover_ms
                                        << " ms (TTL 10 s, margin 3 s)");
  CHECK(fenced_ms < 10'000);  // before its lease could expire: the order is the safety
  CHECK(watcher.samples() > 100);
  CHECK(watcher.most() <= 1);  // never two VMMs of one VM
  const auto down = lab.vm(asker, "fleet down --cluster shop");
  CHECK(down.exit_code == 0);
}
