// Placement across hosts (docs/cluster.md), measured from outside as a user sees it: the same
// fleet of crosvm stand-ins brought up on one crosvisord (the baseline) and on a cluster of
// crosvisord hosts, each timed until every VM is up; then one host killed with SIGKILL and the
// time until its VMs are up elsewhere (lease TTL 10 s). Every crosvisord runs in a network
// namespace of its own, joined to the others by a bridge in a namespace of its own, as in
// tests/integration/cluster_faults_test.cpp; three etcd members run on the first three hosts.
// Nothing of it is on the machine's own network, and it is all removed however the run ends
// (namespaces a killed run left are removed by the next).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench.hpp"
#include "bench/daemon_child.hpp"
#include "core/unique_fd.hpp"
#include "process/launch.hpp"

namespace crosvisor::bench {
namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

// A bridge namespace and `hosts` host namespaces, each host on the bridge through a veth pair
// made inside the namespaces (never on the machine's own). Removed when it goes.
class Namespaces {
 public:
  explicit Namespaces(int hosts) : tag_("cvb" + std::to_string(::getpid())), hosts_(hosts) {
    remove_stale();
    run("ip netns add " + bridge());
    made_.push_back(bridge());
    run("ip netns exec " + bridge() + " ip link add br0 type bridge");
    run("ip netns exec " + bridge() + " ip link set br0 up");
    for (int i = 1; i <= hosts; ++i) {
      run("ip netns add " + host(i));
      made_.push_back(host(i));
      const std::string in = "ip netns exec " + host(i) + " ";
      run(in + "ip link set lo up");
      run(in + "ip link add eth0 type veth peer name p" + std::to_string(i) + " netns " + bridge());
      run(in + "ip addr add " + address(i) + "/24 dev eth0");
      run(in + "ip link set eth0 up");
      run("ip netns exec " + bridge() + " ip link set p" + std::to_string(i) + " master br0");
      run("ip netns exec " + bridge() + " ip link set p" + std::to_string(i) + " up");
    }
  }
  ~Namespaces() {
    for (const auto& name : made_)
      (void)::system(("ip netns del " + name + " 2>/dev/null").c_str());
  }
  Namespaces(const Namespaces&) = delete;
  Namespaces& operator=(const Namespaces&) = delete;

  std::string host(int i) const { return tag_ + "-h" + std::to_string(i); }
  static std::string address(int i) { return "198.18.251." + std::to_string(i); }

 private:
  std::string bridge() const { return tag_ + "-br"; }
  // Those of a run killed before it could remove them: their pid is no process's any more.
  static void remove_stale() {
    std::istringstream listed(run("ip netns list"));
    for (std::string line; std::getline(listed, line);) {
      const std::string name = line.substr(0, line.find(' '));
      const auto dash = name.find('-');
      if (!name.starts_with("cvb") || dash == std::string::npos || dash == 3)
        continue;
      const std::string pid = name.substr(3, dash - 3);
      if (pid.find_first_not_of("0123456789") == std::string::npos &&
          !std::filesystem::exists("/proc/" + pid))
        (void)::system(("ip netns del " + name).c_str());
    }
  }

  std::string tag_;
  int hosts_;
  std::vector<std::string> made_;
};

}  // namespace

int cluster_scenario(const Options& options) {
  const int vms = options.quick ? 40 : options.vms;
  const int hosts = options.quick ? 2 : 4;
  const auto file = stand_in_fleet(options, "spread", "s", vms, "spread = true\n");

  Namespaces namespaces(hosts);

  // The baseline: one crosvisord; `vm fleet up` returns once every VM is up.
  double one_host = 0;
  {
    const auto dir = options.work_dir / "alone";
    std::filesystem::create_directories(dir);
    Child daemon(beside("crosvisord"), daemon_args(options, dir), dir / "log", namespaces.host(1));
    seconds_until([&] { return std::filesystem::exists(dir / "control.sock"); },
                  std::chrono::seconds(10));
    const auto start = Clock::now();
    vm(dir / "control.sock", "fleet up " + file.string());
    one_host = std::chrono::duration<double>(Clock::now() - start).count();
    vm(dir / "control.sock", "fleet down spread --force");
  }

  // The cluster: three etcd members (on the first three hosts, one alone when there are two)
  // and `hosts` crosvisord.
  const int members = std::min(3, hosts - 1);
  std::string initial;
  std::string endpoints;
  for (int i = 1; i <= members; ++i) {
    initial += (i > 1 ? "," : "") + ("e" + std::to_string(i)) + "=http://" +
               Namespaces::address(i) + ":2380";
    endpoints += (i > 1 ? "," : "") + ("http://" + Namespaces::address(i)) + ":2379";
  }
  std::vector<std::unique_ptr<Child>> etcd;
  for (int i = 1; i <= members; ++i) {
    const std::string at = "http://" + Namespaces::address(i);
    etcd.push_back(std::make_unique<Child>(
        "/usr/bin/etcd",
        std::vector<std::string>{
            "--name=e" + std::to_string(i),
            "--data-dir=" + (options.work_dir / ("etcd" + std::to_string(i))).string(),
            "--listen-client-urls=" + at + ":2379", "--advertise-client-urls=" + at + ":2379",
            "--listen-peer-urls=" + at + ":2380", "--initial-advertise-peer-urls=" + at + ":2380",
            "--initial-cluster=" + initial, "--pre-vote=true"},
        options.work_dir / ("etcd" + std::to_string(i) + ".log"), namespaces.host(i)));
  }
  seconds_until(
      [&] {
        try {
          run("ip netns exec " + namespaces.host(hosts) +
              " env ETCDCTL_API=3 etcdctl --dial-timeout=1s --endpoints=" + endpoints +
              " endpoint health");
          return true;
        } catch (const std::runtime_error&) {
          return false;
        }
      },
      std::chrono::seconds(30));
  std::vector<std::unique_ptr<Child>> crosvisord;
  for (int i = 1; i <= hosts; ++i) {
    const auto dir = options.work_dir / ("h" + std::to_string(i));
    std::filesystem::create_directories(dir);
    auto args = daemon_args(options, dir);
    args.insert(args.end(), {"--cluster", endpoints, "--host-name", "h" + std::to_string(i)});
    crosvisord.push_back(
        std::make_unique<Child>(beside("crosvisord"), args, dir / "log", namespaces.host(i)));
    seconds_until([&] { return std::filesystem::exists(dir / "control.sock"); },
                  std::chrono::seconds(20));
  }
  const auto socket = options.work_dir / "h1" / "control.sock";
  std::string last;
  const auto all_up = [&](int lost) {
    last = vm(socket, "fleet status --cluster spread --json");
    const json status = json::parse(last).at(0);
    if (status["up"] != vms)
      return false;
    for (const auto& entry : status["vms"]) {
      if (lost != 0 && entry["host"] == "h" + std::to_string(lost))
        return false;
    }
    return true;
  };
  const auto start = Clock::now();
  vm(socket, "fleet up --cluster " + file.string());
  seconds_until([&] { return all_up(0); }, std::chrono::seconds(600));
  const double cluster = std::chrono::duration<double>(Clock::now() - start).count();

  crosvisord[hosts - 1]->kill();  // the last host: no etcd member there
  const double moved = seconds_until([&] { return all_up(hosts); }, std::chrono::seconds(120));
  vm(socket, "fleet down --cluster spread");

  std::printf("cluster: %d stand-in VMs, %d hosts in network namespaces, %d etcd member(s)\n", vms,
              hosts, members);
  std::printf("| | seconds to all up |\n|---|---|\n");
  std::printf("| one crosvisord, vm fleet up (baseline) | %.2f |\n", one_host);
  std::printf("| %d hosts, vm fleet up --cluster | %.2f |\n", hosts, cluster);
  std::printf("| ratio | %.2f |\n", cluster / one_host);
  std::printf(
      "cluster: a host killed with SIGKILL: its VMs up elsewhere after %.2f s (lease TTL "
      "10 s)\n",
      moved);
  return 0;
}

}  // namespace crosvisor::bench
