// crosvisord as a host of a cluster on a real etcd (Debian's etcd-server, one member on
// loopback): hosts join with a lease, `vm hosts` lists them from any host, a host killed with
// SIGKILL is lost once its lease expires, one that stops leaves at once; mutual TLS; and the
// refusals a new user meets.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "integration/daemon_process.hpp"
#include "integration/guest.hpp"
#include "support/etcd_process.hpp"
#include "support/processes.hpp"
#include "support/subprocess.hpp"
#include "support/temp_dir.hpp"
#include "support/twice_watcher.hpp"

using namespace crosvisor;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

// Each host's state in `vm hosts --json` asked of `daemon`, by name.
std::map<std::string, std::string> host_states(const test::DaemonProcess& daemon) {
  const auto out = daemon.vm("hosts --json");
  std::map<std::string, std::string> states;
  if (out.exit_code != 0)
    return states;
  const json hosts = json::parse(out.output);
  for (const auto& host : hosts)
    states[host["name"]] = host["state"];
  return states;
}

test::DaemonOptions host_options(const std::string& endpoint, const std::string& name,
                                 std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"--cluster",     endpoint, "--host-name",      name,
                                   "--cluster-ttl", "3",      "--cluster-margin", "1"};
  args.insert(args.end(), extra.begin(), extra.end());
  return test::DaemonOptions{.args = args};
}

}  // namespace

TEST_CASE(
    "hosts join and are listed from either host: one killed with SIGKILL is lost when its "
    "lease expires, one that stops leaves at once") {
  test::EtcdProcess etcd;
  auto h1 = std::make_unique<test::DaemonProcess>(host_options(etcd.endpoint(), "h1"));
  auto h2 = std::make_unique<test::DaemonProcess>(host_options(etcd.endpoint(), "h2"));
  const std::map<std::string, std::string> both_up = {{"h1", "up"}, {"h2", "up"}};
  CHECK(host_states(*h1) == both_up);
  CHECK(host_states(*h2) == both_up);
  const json hosts = json::parse(h1->vm("hosts --json").output);
  CHECK(hosts[0]["cpus"].get<int>() >= 1);
  CHECK(hosts[0]["lease_ttl_s"].get<int>() <= 3);
  CHECK(hosts[0]["version"] == CROSVISOR_VERSION);
  const auto table = h1->vm("hosts");
  CHECK(table.exit_code == 0);
  CHECK_THAT(table.output, Catch::StartsWith("NAME  STATE  LEASE") && Catch::Contains("h2    up"));

  // Killed: nothing renews its lease, and the cluster sees it go once the lease expires.
  h2->process->signal(SIGKILL);
  h2->process->wait_exit(10s);
  const auto killed = std::chrono::steady_clock::now();
  CHECK(host_states(*h1).at("h2") == "up");  // not before its lease is out
  REQUIRE(test::eventually([&] { return host_states(*h1).at("h2") == "lost"; }, 10s));
  WARN("h2 listed lost " << std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::steady_clock::now() - killed)
                                .count()
                         << " ms after kill -9 (lease TTL 3 s)");
  // The same name joins again once its old lease is gone.
  h2 = std::make_unique<test::DaemonProcess>(host_options(etcd.endpoint(), "h2"));
  CHECK(host_states(*h2) == both_up);

  // Stopped: it leaves at once (its lease revoked).
  h1->process->signal(SIGTERM);
  CHECK(h1->process->wait_exit(30s) == 0);
  CHECK(host_states(*h2).at("h1") == "lost");
}

TEST_CASE("a host joins over mutual TLS with the cluster's client certificate, and not without") {
  test::TempDir dir;
  const auto certs = test::make_test_certificates(dir.path());
  test::EtcdProcess etcd(certs);
  test::DaemonProcess h1(
      host_options(etcd.endpoint(), "h1",
                   {"--cluster-ca", certs.ca.string(), "--cluster-cert", certs.client_cert.string(),
                    "--cluster-key", certs.client_key.string()}));
  CHECK(host_states(h1) == std::map<std::string, std::string>{{"h1", "up"}});

  test::TempDir other;
  test::Subprocess stranger({CROSVISORD_BINARY, "--socket", (other / "s.sock").string(),
                             "--cluster", etcd.endpoint(), "--host-name", "h2", "--cluster-ca",
                             certs.ca.string(), "--cluster-cert", certs.stranger_cert.string(),
                             "--cluster-key", certs.stranger_key.string()});
  CHECK(stranger.wait_exit(30s) == 4);
  CHECK_THAT(stranger.output(), Catch::Contains("cluster: etcd " + etcd.endpoint()));
  CHECK(host_states(h1) == std::map<std::string, std::string>{{"h1", "up"}});
}

TEST_CASE("what a new user meets: no cluster, an etcd out of reach, a bad host name") {
  test::DaemonProcess alone;
  const auto hosts = alone.vm("hosts");
  CHECK(hosts.exit_code == 1);  // refused
  CHECK_THAT(hosts.output, Catch::Contains("not part of a cluster (start it with --cluster"));

  test::TempDir dir;
  test::Subprocess unreachable({CROSVISORD_BINARY, "--socket", (dir / "a.sock").string(),
                                "--cluster", "http://127.0.0.1:1", "--host-name", "h1"});
  CHECK(unreachable.wait_exit(30s) == 4);
  CHECK_THAT(unreachable.output(), Catch::Contains("cluster: etcd http://127.0.0.1:1: "));
  CHECK_FALSE(std::filesystem::exists(dir / "a.sock"));  // nothing half-started

  test::Subprocess typo({CROSVISORD_BINARY, "--socket", (dir / "b.sock").string(), "--cluster",
                         "127.0.0.1:2379", "--host-name", "h1"});
  CHECK(typo.wait_exit(30s) == 3);
  CHECK_THAT(typo.output(), Catch::Contains("must start with http:// or https://"));

  test::Subprocess bad_name({CROSVISORD_BINARY, "--socket", (dir / "c.sock").string(), "--cluster",
                             "http://127.0.0.1:1", "--host-name", "Host_1"});
  CHECK(bad_name.wait_exit(30s) == 2);
  CHECK_THAT(bad_name.output(), Catch::Contains("--host-name: host name 'Host_1' must be"));
}

namespace {

// Where each VM of a cluster fleet is placed and whether it is ready there, asked of `daemon`.
std::map<std::string, std::string> ready_on(const test::DaemonProcess& daemon,
                                            const std::string& fleet) {
  const auto out = daemon.vm("fleet status --cluster " + fleet + " --json");
  std::map<std::string, std::string> where;
  if (out.exit_code != 0)
    return where;
  const json fleets = json::parse(out.output);
  for (const auto& vm : fleets.at(0)["vms"]) {
    if (vm["state"] == "ready" && vm["host"].is_string())
      where[vm["name"]] = vm["host"];
  }
  return where;
}

}  // namespace

TEST_CASE(
    "a cluster fleet is placed across hosts, a host killed with SIGKILL has its VMs placed "
    "again elsewhere, a frozen etcd fences every host, and no VM ever runs twice") {
  test::EtcdProcess etcd;
  std::map<std::string, std::unique_ptr<test::DaemonProcess>> hosts;
  for (const std::string name : {"h1", "h2", "h3"})
    hosts[name] = std::make_unique<test::DaemonProcess>(host_options(etcd.endpoint(), name));
  std::string keys = test::fake_crosvm_toml("x", "", false);
  keys = keys.substr(keys.find('\n') + 1);
  const auto file = hosts["h1"]->dir.write(
      "shop.toml", "[fleet]\nname = \"shop\"\n[defaults]\n" + keys +
                       "[[vm]]\nname = \"c-{index}\"\ncount = 6\nspread = true\n"
                       "[[vm]]\nname = \"pinned\"\nhosts = [\"h3\"]\nafter = [\"c-0\"]\n");
  std::vector<std::string> names = {"pinned"};
  for (int i = 0; i < 6; ++i)
    names.push_back("c-" + std::to_string(i));
  test::TwiceWatcher watcher(names);

  const auto up = hosts["h1"]->vm("fleet up --cluster " + file.string());
  INFO(up.output);
  REQUIRE(up.exit_code == 0);
  CHECK_THAT(up.output, Catch::Contains("fleet shop (7 VMs) is the cluster's"));
  std::map<std::string, std::string> where;
  REQUIRE(test::eventually(
      [&] {
        where = ready_on(*hosts["h2"], "shop");  // asked of any host
        return where.size() == 7;
      },
      20s));
  CHECK(where["pinned"] == "h3");
  std::map<std::string, int> per_host;
  for (const auto& [vm, host] : where)
    ++per_host[host];
  CHECK(per_host.size() == 3);  // spread over every host
  // A second fleet of the same name is refused, saying so.
  const auto twice = hosts["h3"]->vm("fleet up --cluster " + file.string());
  CHECK(twice.exit_code != 0);
  CHECK_THAT(twice.output, Catch::Contains("the cluster has a fleet named 'shop' already"));
  // A network lives on one host: a cluster fleet with one is refused, and nothing is kept.
  const auto networked = hosts["h1"]->dir.write(
      "lan.toml",
      "[fleet]\nname = \"lan\"\n[[network]]\nname = \"back\"\nsubnet = "
      "\"198.19.220.0/24\"\n[defaults]\n" +
          keys + "[[vm]]\nname = \"n\"\nnetworks = [ { name = \"back\" } ]\n");
  const auto refused = hosts["h2"]->vm("fleet up --cluster " + networked.string());
  CHECK(refused.exit_code == 3);  // a fleet file that is wrong
  CHECK_THAT(refused.output, Catch::Contains("a cluster fleet cannot have [[network]]"));
  CHECK(hosts["h3"]->vm("fleet status --cluster lan").exit_code != 0);

  // h2 dies: its VMMs with it (parent-death signal); once its lease expires its VMs are placed
  // again on the others.
  const auto killed = std::chrono::steady_clock::now();
  hosts["h2"]->process->signal(SIGKILL);
  hosts["h2"]->process->wait_exit(10s);
  REQUIRE(test::eventually(
      [&] {
        where = ready_on(*hosts["h1"], "shop");
        return where.size() == 7 && std::none_of(where.begin(), where.end(), [](const auto& entry) {
                 return entry.second == "h2";
               });
      },
      20s));
  WARN("h2's VMs ready elsewhere " << std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::steady_clock::now() - killed)
                                          .count()
                                   << " ms after kill -9 (lease TTL 3 s)");

  // What happened, from any host: h2 lost, its VMs moved.
  const auto kinds_of = [&](const test::DaemonProcess& daemon) {
    std::multimap<std::string, json> kinds;
    const auto out = daemon.vm("events --cluster --json");
    std::size_t start = 0;
    while (start < out.output.size()) {
      const auto end = out.output.find('\n', start);
      const auto line = out.output.substr(start, end - start);
      if (!line.empty()) {
        const json event = json::parse(line);
        kinds.emplace(event["kind"].get<std::string>(), event);
      }
      if (end == std::string::npos)
        break;
      start = end + 1;
    }
    return kinds;
  };
  auto kinds = kinds_of(*hosts["h3"]);
  CHECK(kinds.count("placed") == 7);
  // pinned starts after c-0: placed only once c-0 was up, wherever it ran.
  REQUIRE(kinds.count("waiting") >= 1);
  CHECK_THAT(kinds.find("waiting")->second["detail"].get<std::string>(),
             Catch::Contains("waits for c-0 to be up"));
  REQUIRE(kinds.count("host-lost") == 1);
  CHECK(kinds.find("host-lost")->second["host"] == "h2");
  CHECK(kinds.count("moved") == static_cast<std::size_t>(per_host["h2"]));
  for (auto [at, end] = kinds.equal_range("moved"); at != end; ++at)
    CHECK_THAT(at->second["detail"].get<std::string>(), Catch::Contains("its host h2 is lost"));
  const auto table = hosts["h1"]->vm("events --cluster");
  CHECK_THAT(table.output, Catch::Contains("host-lost  host h2: its lease expired"));

  // etcd frozen: no host can renew; each fences itself before its lease could expire, and no
  // VM runs. Thawed, each joins again and runs what is still placed on it.
  const auto placed = where;
  ::kill(etcd.pid(), SIGSTOP);
  const auto frozen = std::chrono::steady_clock::now();
  CHECK(test::eventually(
      [&] {
        for (const auto& name : names) {
          if (!test::processes_with_cmdline("--name " + name + " ").empty())
            return false;
        }
        return true;
      },
      10s));
  WARN("every VM stopped " << std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::steady_clock::now() - frozen)
                                  .count()
                           << " ms after etcd froze (TTL 3 s, margin 1 s)");
  ::kill(etcd.pid(), SIGCONT);
  CHECK(test::eventually([&] { return ready_on(*hosts["h3"], "shop") == placed; }, 30s));
  // Each host says it fenced itself once it can write again; the VMs stopped died as KILLED or
  // SHUTDOWN by the fence.
  CHECK(test::eventually([&] { return kinds_of(*hosts["h1"]).count("fenced") == 2; }, 10s));

  // Down: every host stops its part.
  const auto down = hosts["h3"]->vm("fleet down --cluster shop");
  CHECK(down.exit_code == 0);
  CHECK(test::eventually(
      [&] {
        for (const auto& name : names) {
          if (!test::processes_with_cmdline("--name " + name + " ").empty())
            return false;
        }
        return true;
      },
      20s));
  CHECK(watcher.samples() > 50);
  CHECK(watcher.most() <= 1);  // never two VMMs of one VM
}
