// crosvisord as a host of a cluster on a real etcd (Debian's etcd-server, one member on
// loopback): hosts join with a lease, `vm hosts` lists them from any host, a host killed with
// SIGKILL is lost once its lease expires, one that stops leaves at once; mutual TLS; and the
// refusals a new user meets.
#include <signal.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "integration/daemon_process.hpp"
#include "support/etcd_process.hpp"
#include "support/processes.hpp"
#include "support/subprocess.hpp"
#include "support/temp_dir.hpp"

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
    "hosts join a cluster and vm hosts lists them from either host: one killed with SIGKILL "
    "is lost when its lease expires, one that stops leaves at once") {
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
