// Placement across hosts (docs/cluster.md), measured from outside as a user sees it: the same
// fleet of crosvm stand-ins brought up on one crosvisord (the baseline) and on a cluster of
// crosvisord hosts on one etcd member (all on loopback, in this machine's own processes), each
// timed until every VM is up; then one host killed with SIGKILL and the time until its VMs are
// up elsewhere (lease TTL 10 s).
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench.hpp"
#include "cluster/etcd_client.hpp"
#include "core/unique_fd.hpp"
#include "process/launch.hpp"

namespace crosvisor::bench {
namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

std::filesystem::path beside(const char* name) {
  return std::filesystem::read_symlink("/proc/self/exe").parent_path() / name;
}

// A child of the benchmark's own, its output in a file; SIGKILLed and reaped when it goes.
struct Child {
  process::SpawnedChild child;
  bool alive = true;
  Child(const std::filesystem::path& binary, std::vector<std::string> args,
        const std::filesystem::path& log) {
    process::LaunchRequest request;
    request.binary = binary;
    request.args = std::move(args);
    request.max_open_files = 65536;
    request.fds.set(0, UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC)));
    request.fds.set(1,
                    UniqueFd(::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)));
    request.fds.set(2, UniqueFd(::open(log.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC)));
    auto spawned = process::spawn_child(request);
    if (!spawned)
      throw std::runtime_error(spawned.error().message);
    child = std::move(*spawned);
  }
  void kill() {
    if (!alive)
      return;
    ::kill(child.pid, SIGKILL);
    ::waitpid(child.pid, nullptr, 0);
    alive = false;
  }
  ~Child() { kill(); }
};

int free_port() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t size = sizeof(address);
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &size);
  return ntohs(address.sin_port);
}

// `vm ARGS` against the daemon at `socket`: its output, or throws.
std::string vm(const std::filesystem::path& socket, const std::string& args) {
  const std::string command =
      "CROSVISOR_SOCKET=" + socket.string() + " " + beside("vm").string() + " " + args + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  std::string output;
  char buffer[4096];
  std::size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0)
    output.append(buffer, n);
  if (::pclose(pipe) != 0)
    throw std::runtime_error("vm " + args + ": " + output);
  return output;
}

// Seconds until `done` holds, polled every 100 ms (at most `limit`).
double seconds_until(const std::function<bool()>& done, std::chrono::seconds limit) {
  const auto start = Clock::now();
  while (!done()) {
    if (Clock::now() - start > limit)
      throw std::runtime_error("not done within " + std::to_string(limit.count()) + " s");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::vector<std::string> daemon_args(const Options& options, const std::filesystem::path& dir) {
  return {"--socket",      (dir / "control.sock").string(),
          "--runtime-dir", (dir / "run").string(),
          "--state-dir",   (dir / "state").string(),
          "--crosvm",      options.fake_crosvm.string(),
          "--log-level",   "error"};
}

}  // namespace

int cluster_scenario(const Options& options) {
  const int vms = options.quick ? 40 : options.vms;
  const int hosts = options.quick ? 2 : 4;
  std::filesystem::create_directories(options.work_dir);
  const auto kernel = options.work_dir / "kernel";
  { std::ofstream(kernel) << "not a kernel"; }
  const auto file = options.work_dir / "spread.toml";
  {
    std::ofstream out(file);
    out << "[fleet]\nname = \"spread\"\nconcurrency = 64\n[defaults]\nvmm = \"crosvm\"\nkernel = \""
        << kernel.string() << "\"\nparams = \"console=ttyS0\"\n[[vm]]\nname = \"s-{index}\"\n"
        << "count = " << vms << "\nspread = true\n";
  }

  // The baseline: one crosvisord; `vm fleet up` returns once every VM is up.
  double one_host = 0;
  {
    const auto dir = options.work_dir / "alone";
    std::filesystem::create_directories(dir);
    Child daemon(beside("crosvisord"), daemon_args(options, dir), dir / "log");
    seconds_until([&] { return std::filesystem::exists(dir / "control.sock"); },
                  std::chrono::seconds(10));
    const auto start = Clock::now();
    vm(dir / "control.sock", "fleet up " + file.string());
    one_host = std::chrono::duration<double>(Clock::now() - start).count();
    vm(dir / "control.sock", "fleet down spread --force");
  }

  // The cluster: one etcd member and `hosts` crosvisord.
  const int client_port = free_port();
  const int peer_port = free_port();
  const std::string endpoint = "http://127.0.0.1:" + std::to_string(client_port);
  const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port);
  Child etcd("/usr/bin/etcd",
             {"--name=m", "--data-dir=" + (options.work_dir / "etcd").string(),
              "--listen-client-urls=" + endpoint, "--advertise-client-urls=" + endpoint,
              "--listen-peer-urls=" + peer, "--initial-advertise-peer-urls=" + peer,
              "--initial-cluster=m=" + peer, "--pre-vote=true"},
             options.work_dir / "etcd.log");
  auto client = cluster::EtcdClient::open({{endpoint}, {}, std::chrono::milliseconds(500)});
  if (!client)
    throw std::runtime_error(client.error().message);
  seconds_until([&] { return client->get("/").has_value(); }, std::chrono::seconds(20));
  std::vector<std::unique_ptr<Child>> members;
  for (int i = 1; i <= hosts; ++i) {
    const auto dir = options.work_dir / ("h" + std::to_string(i));
    std::filesystem::create_directories(dir);
    auto args = daemon_args(options, dir);
    args.insert(args.end(), {"--cluster", endpoint, "--host-name", "h" + std::to_string(i)});
    members.push_back(std::make_unique<Child>(beside("crosvisord"), args, dir / "log"));
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

  members[1]->kill();  // h2
  const double moved = seconds_until([&] { return all_up(2); }, std::chrono::seconds(120));
  vm(socket, "fleet down --cluster spread");

  std::printf("cluster: %d stand-in VMs, %d hosts on one etcd member (loopback)\n", vms, hosts);
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
