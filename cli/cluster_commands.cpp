#include "cli/cluster_commands.hpp"

#include <iostream>

#include "cli/daemon_client.hpp"
#include "cli/history_commands.hpp"
#include "cli/output.hpp"

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

}  // namespace crosvisor::cli
