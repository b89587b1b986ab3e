// Prometheus's text exposition of a stats answer: names, types, labels and escaping, units, and
// what is left out when it is not counted.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "metrics/exposition.hpp"

using namespace crosvisor;
using json = nlohmann::json;

TEST_CASE("metrics exposition: per-VM families in base units, labels escaped, daemon's own") {
  const json vms = json::parse(R"([
    {"name": "web", "fleet": "shop", "owner_uid": 1000, "state": "ready", "vmm": "qemu",
     "pid": 42, "uptime_ms": 1500, "restarts": 2, "memory_mib": 256, "cpus": 2,
     "cpu_usec": 2500000, "rss_bytes": 1048576, "memory_bytes": 2097152,
     "memory_limit_bytes": null, "read_bytes": 4096, "write_bytes": 0, "tasks": 5,
     "source": "cgroup"},
    {"name": "od\"d", "fleet": null, "owner_uid": null, "state": "starting", "vmm": "crosvm",
     "pid": null, "uptime_ms": 0, "restarts": 0, "memory_mib": 64, "cpus": 1,
     "cpu_usec": null, "rss_bytes": null, "memory_bytes": null, "memory_limit_bytes": null,
     "read_bytes": null, "write_bytes": null, "tasks": null, "source": null}])");
  metrics::DaemonFigures daemon;
  daemon.version = "0.1.0";
  daemon.resident_bytes = 9000;
  daemon.open_fds = 12;
  const std::string text = metrics::exposition(vms, daemon);
  INFO(text);
  const std::string web = R"(vm="web",owner="1000",fleet="shop")";
  CHECK_THAT(text, Catch::Contains("# TYPE crosvisor_vm_cpu_seconds_total counter\n"));
  CHECK_THAT(text, Catch::Contains("crosvisor_vm_cpu_seconds_total{" + web + "} 2.5\n"));
  CHECK_THAT(text, Catch::Contains("crosvisor_vm_uptime_seconds{" + web + "} 1.5\n"));
  CHECK_THAT(text, Catch::Contains("crosvisor_vm_restarts_total{" + web + "} 2\n"));
  CHECK_THAT(text, Catch::Contains("crosvisor_vm_memory_size_bytes{" + web + "} 268435456\n"));
  CHECK_THAT(text, Catch::Contains("crosvisor_vm_up{" + web + R"(,vmm="qemu",state="ready"} 1)"));
  // The second VM: its name escaped, no owner or fleet, down, and nothing it does not count.
  const std::string odd = R"(vm="od\"d",owner="",fleet="")";
  CHECK_THAT(text,
             Catch::Contains("crosvisor_vm_up{" + odd + R"(,vmm="crosvm",state="starting"} 0)"));
  CHECK_THAT(text, !Catch::Contains("crosvisor_vm_cpu_seconds_total{" + odd));
  CHECK_THAT(text, !Catch::Contains("crosvisor_vm_memory_limit_bytes{"));
  CHECK_THAT(text, Catch::Contains("crosvisor_vms{state=\"ready\"} 1\n"));
  CHECK_THAT(text, Catch::Contains("crosvisor_stats_up 1\n"));
  CHECK_THAT(text, Catch::Contains("crosvisor_build_info{version=\"0.1.0\"} 1\n"));
  CHECK_THAT(text, Catch::Contains("process_resident_memory_bytes 9000\n"));
  CHECK_THAT(text, Catch::Contains("process_open_fds 12\n"));
  CHECK(metrics::label_value("a\\b\nc") == "a\\\\b\\nc");
  // Every sample line belongs to a family declared before it.
  std::string declared;
  std::size_t at = 0;
  while (at < text.size()) {
    const auto end = text.find('\n', at);
    const std::string line = text.substr(at, end - at);
    at = end + 1;
    if (line.starts_with("# TYPE "))
      declared = line.substr(7, line.find(' ', 7) - 7);
    else if (!line.starts_with("#"))
      CHECK(line.substr(0, line.find_first_of("{ ")) == declared);
  }
}
