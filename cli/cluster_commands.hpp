// `vm hosts`: the hosts of the cluster the daemon is part of (docs/cluster.md), up or lost.
#pragma once

#include "cli/daemon_commands.hpp"

namespace crosvisor::cli {

int show_hosts(const DaemonOptions& options);

}  // namespace crosvisor::cli
