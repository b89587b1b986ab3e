// `vm fleet check|up|status|down|restart`: fleets from TOML files, run by crosvisord.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "cli/daemon_commands.hpp"

namespace crosvisor::cli {

struct FleetUpOptions {
  std::filesystem::path file;
  bool foreground = false;   // the fleet lives as long as this command
  bool until_ready = false;  // bring it up, show it ready, take it down
  bool persist = false;      // it comes up again whenever crosvisord starts
  bool cluster = false;      // placed on the daemon's cluster (docs/cluster.md)
  std::string log_level = "warn";
};

int fleet_check(const std::filesystem::path& file);
int fleet_up(const DaemonOptions& options, const FleetUpOptions& up);
// quiet: the fleets' names only, one per line.
int fleet_status(const DaemonOptions& options, const std::string& name, bool all_users,
                 bool quiet = false);
int fleet_down(const DaemonOptions& options, const std::string& name,
               std::optional<double> timeout_s, bool force);
int fleet_restart(const DaemonOptions& options, const std::string& name, const std::string& vm);
// Every fleet the user may see (every user's, with all_users) down at once.
int fleet_down_all(const DaemonOptions& options, bool all_users, std::optional<double> timeout_s,
                   bool force);
int fleet_forget(const DaemonOptions& options, const std::string& name);

}  // namespace crosvisor::cli
