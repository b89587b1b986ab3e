#include "cli/cluster_commands.hpp"

#include <poll.h>
#include <sys/signalfd.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <set>

#include "cli/daemon_client.hpp"
#include "cli/history_commands.hpp"
#include "cli/output.hpp"
#include "core/exit_codes.hpp"
#include "core/unique_fd.hpp"
#include "core/unix_time.hpp"
#include "process/signals.hpp"

namespace crosvisor::cli {

int show_hosts(const DaemonOptions& options) {
  auto client = find_daemon(DaemonSearch{options.socket});
  if (!client)
    return report(client.error());
  auto reply = client->call(protocol::HostsRequest{});
  if (!reply)
    return report(reply.error());
  const nlohmann::json hosts = reply->value("hosts", nlohmann::json::array());
  if (options.json) {
    std::cout << hosts.dump(2) << '\n';
    return 0;
  }
  Table table({"NAME", "STATE", "LEASE", "CPUS", "MEMORY", "VMMS", "VERSION", "JOINED"});
  for (const auto& host : hosts) {
    std::string vmms;
    for (const auto& vmm : host.value("vmms", nlohmann::json::array()))
      vmms += (vmms.empty() ? "" : ",") + vmm.get<std::string>();
    table.add({host.value("name", "?"), host.value("state", "?"),
               host.contains("lease_ttl_s")
                   ? std::to_string(host["lease_ttl_s"].get<std::int64_t>()) + "s"
                   : "-",
               std::to_string(host.value("cpus", 0u)),
               std::to_string(host.value("memory_mib", std::uint64_t{0})) + " MiB",
               vmms.empty() ? "-" : vmms, host.value("version", "?"),
               local_time(host.value("joined_at_ms", std::int64_t{0}), "%Y-%m-%d %H:%M:%S")});
  }
  table.print();
  return 0;
}

int cluster_fleet_status(const DaemonOptions& options, const std::string& name) {
  auto client = find_daemon(DaemonSearch{options.socket});
  if (!client)
    return report(client.error());
  auto reply = client->call(
      protocol::FleetStatusRequest{.fleet = name, .all_users = false, .cluster = true});
  if (!reply)
    return report(reply.error());
  const nlohmann::json fleets = reply->value("fleets", nlohmann::json::array());
  if (options.json) {
    std::cout << fleets.dump(2) << '\n';
    return 0;
  }
  for (const auto& fleet : fleets) {
    std::cout << "fleet " << fleet.value("name", "?") << " (cluster): " << fleet.value("up", 0u)
              << " of " << fleet.value("total", 0u) << " up, " << fleet.value("ready", 0u)
              << " ready\n";
    Table table({"NAME", "HOST", "STATE", "PID", "DETAIL"}, "  ");
    for (const auto& vm : fleet["vms"]) {
      const auto text = [&](const char* key) {
        return vm[key].is_null()     ? std::string("-")
               : vm[key].is_string() ? vm[key].get<std::string>()
                                     : vm[key].dump();
      };
      table.add({text("name"), text("host"), text("state"), text("pid"), text("detail")});
    }
    table.print();
  }
  return 0;
}

int cluster_fleet_down(const DaemonOptions& options, const std::string& name) {
  auto client = find_daemon(DaemonSearch{options.socket});
  if (!client)
    return report(client.error());
  auto reply = client->call(protocol::FleetDownRequest{.fleet = name, .cluster = true});
  if (!reply)
    return report(reply.error());
  if (options.json)
    std::cout << reply->dump(2) << '\n';
  else
    std::cerr << "vm fleet: fleet " << name << " left the cluster: its hosts stop its VMs\n";
  return 0;
}

namespace {

std::string event_line(const nlohmann::json& event) {
  std::string line = local_time(event.value("at_ms", std::int64_t{0}), "%Y-%m-%d %H:%M:%S") + "  " +
                     event.value("kind", "?");
  const std::string fleet = event.value("fleet", "");
  const std::string vm = event.value("vm", "");
  const std::string host = event.value("host", "");
  if (!vm.empty())
    line += "  " + fleet + "/" + vm;
  if (!host.empty())
    line += "  host " + host;
  const std::string detail = event.value("detail", "");
  if (!detail.empty())
    line += ": " + detail;
  return line;
}

}  // namespace

int cluster_events(const DaemonOptions& options, const std::optional<std::string>& since,
                   bool follow) {
  std::int64_t from = unix_now_ms() - 3'600'000;
  if (since) {
    auto parsed = since_option(*since);
    if (!parsed)
      return kExitUsage;
    from = *parsed;
  }
  const sigset_t stop_signals = process::block_stop_signals();
  UniqueFd signals(signalfd(-1, &stop_signals, SFD_CLOEXEC));
  auto client = find_daemon(DaemonSearch{options.socket});
  if (!client)
    return report(client.error());
  std::set<std::string> seen;  // events of the same millisecond come again: printed once
  for (;;) {
    auto reply = client->call(protocol::ClusterEventsRequest{static_cast<std::uint64_t>(from)});
    if (!reply)
      return report(reply.error());
    for (const auto& event : reply->value("events", nlohmann::json::array())) {
      if (!seen.insert(event.dump()).second)
        continue;
      from = std::max(from, event.value("at_ms", from));
      std::cout << (options.json ? event.dump() : event_line(event)) << std::endl;
    }
    if (!follow)
      return 0;
    // The next look in a second, unless Ctrl-C comes first.
    pollfd interrupt{signals.get(), POLLIN, 0};
    if (::poll(&interrupt, 1, 1000) > 0)
      return 0;
  }
}

}  // namespace crosvisor::cli
