// `vm hosts`, and `vm fleet status|down --cluster`: the cluster the daemon is part of
// (docs/cluster.md).
#pragma once

#include <optional>
#include <string>

#include "cli/daemon_commands.hpp"

namespace crosvisor::cli {

int show_hosts(const DaemonOptions& options);
// A cluster fleet's VMs: where each is placed and what that host says of it.
int cluster_fleet_status(const DaemonOptions& options, const std::string& name);
// A cluster fleet removed from etcd: the hosts stop its VMs.
int cluster_fleet_down(const DaemonOptions& options, const std::string& name);
// The cluster's events since `since` (default: the last hour); with follow, new ones as they
// come, until Ctrl-C.
int cluster_events(const DaemonOptions& options, const std::optional<std::string>& since,
                   bool follow);

}  // namespace crosvisor::cli
