// Per-VM figures (docs/sandbox.md): `vm stats` and the `stats` op, and crosvisord's Prometheus
// endpoint, scraped by a real Prometheus (Debian's package) on loopback.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/exit_codes.hpp"
#include "core/unique_fd.hpp"
#include "integration/daemon_process.hpp"
#include "integration/guest.hpp"
#include "support/processes.hpp"
#include "support/subprocess.hpp"
#include "support/temp_dir.hpp"

using namespace crosvisor;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

// GET `path` from 127.0.0.1:`port`: the body, or nothing.
std::optional<std::string> http_get(int port, const std::string& path) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0)
    return std::nullopt;
  const std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) < 0)
    return std::nullopt;
  std::string response;
  char buffer[8192];
  ssize_t n;
  while ((n = ::recv(fd.get(), buffer, sizeof(buffer), 0)) > 0)
    response.append(buffer, static_cast<std::size_t>(n));
  const auto body = response.find("\r\n\r\n");
  if (!response.starts_with("HTTP/1.") || body == std::string::npos ||
      response.find(" 200 ") == std::string::npos)
    return std::nullopt;
  return response.substr(body + 4);
}

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

// The port crosvisord said it serves metrics on.
int metrics_port(const test::DaemonProcess& daemon) {
  const std::string& said = daemon.process->output();
  const auto at = said.find("/metrics");
  REQUIRE(at != std::string::npos);
  const auto colon = said.rfind(':', at);
  return std::stoi(said.substr(colon + 1, at - colon - 1));
}

}  // namespace

TEST_CASE(
    "vm stats and the metrics endpoint: a running VM's CPU, memory, tasks and uptime, from its "
    "cgroup where it has one, and Prometheus's text format") {
  test::DaemonProcess daemon({.args = {"--metrics", "0"}});  // a free port on loopback
  const int port = metrics_port(daemon);
  CHECK_THAT(daemon.process->output(), Catch::Contains("metrics at http://127.0.0.1:"));
  // A guest that works: its VMM spins on a CPU.
  const auto file = daemon.dir.write(
      "watched.toml", test::fake_crosvm_toml("watched", "fake_crosvm.burn=1", false));
  REQUIRE(daemon.vm("start " + file.string()).exit_code == 0);
  json stats;
  REQUIRE(test::eventually(
      [&] {
        const auto out = daemon.vm("stats --json watched");
        stats = json::parse(out.output, nullptr, false);
        return out.exit_code == 0 && stats.is_array() && stats.size() == 1 &&
               stats[0].value("state", "") == "ready";
      },
      20s));
  const json& vm = stats[0];
  INFO(vm.dump());
  CHECK(vm["pid"].is_number());
  CHECK(vm["cpu_usec"].is_number());
  CHECK(vm["rss_bytes"].get<std::uint64_t>() > 0);
  CHECK(vm["tasks"].get<std::uint64_t>() >= 1);
  CHECK(vm["restarts"] == 0);
  CHECK((vm["source"] == "cgroup" || vm["source"] == "proc"));
  // The figures move as the guest works: its CPU time rises.
  const auto first_cpu = vm["cpu_usec"].get<std::uint64_t>();
  std::uint64_t later_cpu = first_cpu;
  CHECK(test::eventually(
      [&] {
        const auto again = json::parse(daemon.vm("stats --json watched").output, nullptr, false);
        if (again.is_array() && again.size() == 1 && again[0]["cpu_usec"].is_number())
          later_cpu = again[0]["cpu_usec"].get<std::uint64_t>();
        return later_cpu >= first_cpu + 200'000;
      },
      20s));
  INFO("CPU time " << first_cpu << " us, then " << later_cpu << " us");
  if (::geteuid() == 0 && vm["source"] == "cgroup")
    CHECK(vm["memory_bytes"].get<std::uint64_t>() > 0);
  const auto table = daemon.vm("stats");
  CHECK(table.exit_code == 0);
  CHECK_THAT(table.output,
             Catch::Contains("NAME") && Catch::Contains("CPU") && Catch::Contains("watched"));
  const auto missing = daemon.vm("stats nosuch");
  CHECK(missing.exit_code == exit_code_for(ErrorKind::not_found));
  CHECK_THAT(missing.output, Catch::Contains("no live VM of yours named nosuch"));

  const auto text = http_get(port, "/metrics");
  REQUIRE(text);
  INFO(*text);
  CHECK_THAT(*text, Catch::Contains("crosvisor_vm_up{vm=\"watched\""));
  CHECK_THAT(*text, Catch::Contains("crosvisor_vm_cpu_seconds_total{vm=\"watched\""));
  CHECK_THAT(*text, Catch::Contains("crosvisor_stats_up 1\n"));
  CHECK_THAT(*text, Catch::Contains("process_resident_memory_bytes "));
  CHECK_FALSE(http_get(port, "/other"));
  CHECK(daemon.vm("stop watched").exit_code == 0);
}

TEST_CASE("a real Prometheus scrapes crosvisord's endpoint and has each VM's series") {
  if (!std::filesystem::exists("/usr/bin/prometheus")) {
    WARN("skipped: no /usr/bin/prometheus (scripts/setup installs Debian's prometheus)");
    return;
  }
  test::DaemonProcess daemon({.args = {"--metrics", "127.0.0.1:0"}});
  const int port = metrics_port(daemon);
  const auto file = daemon.dir.write("scraped.toml", test::fake_crosvm_toml("scraped", "", false));
  REQUIRE(daemon.vm("start " + file.string()).exit_code == 0);
  test::TempDir prometheus_dir;
  const auto config =
      prometheus_dir.write("prometheus.yml",
                           "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                           "scrape_configs:\n  - job_name: crosvisord\n    static_configs:\n"
                           "      - targets: ['127.0.0.1:" +
                               std::to_string(port) + "']\n");
  const int web = free_port();
  // Its log in a file: a pipe nobody reads would fill and stop it.
  test::Subprocess prometheus({"/bin/sh", "-c",
                               "exec /usr/bin/prometheus --config.file=" + config.string() +
                                   " --storage.tsdb.path=" + (prometheus_dir / "data").string() +
                                   " --web.listen-address=127.0.0.1:" + std::to_string(web) +
                                   " > " + (prometheus_dir / "log").string() + " 2>&1"});
  const auto query = [&](const std::string& promql) {
    const auto body = http_get(web, "/api/v1/query?query=" + promql);
    return body ? json::parse(*body, nullptr, false) : json();
  };
  json up;
  const bool scraped = test::eventually(
      [&] {
        up = query("crosvisor_vm_up");
        if (!up.is_object() || up.value("status", "") != "success")
          return false;
        for (const auto& series : up["data"]["result"]) {
          if (series["metric"].value("vm", "") == "scraped" &&
              series["value"][1].get<std::string>() == "1")
            return true;
        }
        return false;
      },
      60s, 500ms);
  std::ifstream log(prometheus_dir / "log");
  INFO("prometheus said: " << std::string(std::istreambuf_iterator<char>(log), {}));
  INFO(up.dump());
  REQUIRE(scraped);
  const json target = query("up%7Bjob%3D%22crosvisord%22%7D");  // up{job="crosvisord"}
  REQUIRE(target["data"]["result"].size() == 1);
  CHECK(target["data"]["result"][0]["value"][1] == "1");
  const json cpu = query("crosvisor_vm_cpu_seconds_total");
  CHECK(cpu["data"]["result"].size() >= 1);
  CHECK(daemon.vm("stop scraped").exit_code == 0);
}
