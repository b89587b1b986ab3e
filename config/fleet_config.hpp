// Fleet files: many VMs in one TOML file, launched and kept alive together.
//
//   [fleet]                      name (default: the file's stem), concurrency, cid_first/last
//   [[network]]                  name, subnet = "10.20.0.0/24" (default: one crosvisord picks),
//                                dns = true (dnsmasq answers the VMs' names); docs/networks.md
//   [defaults]                   any VM key, for every [[vm]] below
//   [[vm]]                       a VM file's keys, plus:
//   count = 3                    replicas; the name is then a template: "web-{index}" (0-based)
//   after = ["db"]               start once these VMs (by name or name template) are ready
//   restart = "on-failure"       never (default) | on-failure (any death but SHUTDOWN) | always
//   max_restarts = 3             at most this many restarts within window_s (default 3 in 60 s)
//   window_s = 60
//   backoff_s = 1                the first restart's delay; it doubles up to 30 s
//   hosts = ["h1", "h2"]         a cluster fleet (vm fleet up --cluster, docs/cluster.md): only
//                                on these hosts (default: any)
//   spread = true                the replicas of this [[vm]] on different hosts
//   on_host_loss = "reschedule"  reschedule (default) | wait: when its host is lost, placed again
//                                elsewhere, or left lost until the host returns. A VM with a
//                                writable disk always waits: its data is on the lost host
//
// The whole file is validated before anything starts, and every problem is reported at once
// with file, line, column and key: unknown keys (with a suggestion), wrong types, missing files,
// duplicate names, duplicate fixed CIDs, CIDs outside the range, a writable image shared by two
// VMs, `after` naming no VM, and start-order cycles.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "crosvisor/error.hpp"
#include "crosvisor/vm_spec.hpp"

namespace crosvisor::config {

enum class RestartPolicy { never, on_failure, always };

struct RestartSpec {
  RestartPolicy policy = RestartPolicy::never;
  std::uint32_t max_restarts = 3;
  std::chrono::milliseconds window{60'000};
  std::chrono::milliseconds backoff{1'000};
};

enum class OnHostLoss { reschedule, wait };

// Where a cluster fleet's VM may run (docs/cluster.md); a single host ignores it.
struct PlacementSpec {
  std::vector<std::string> hosts;  // empty: any host
  bool spread = false;             // the group's replicas on different hosts
  OnHostLoss on_host_loss = OnHostLoss::reschedule;
  friend bool operator==(const PlacementSpec&, const PlacementSpec&) = default;
};

struct FleetVm {
  VmSpec spec;
  RestartSpec restart;
  PlacementSpec placement;
  std::vector<std::string> after;  // expanded VM names
  std::string group;               // the [[vm]] entry's name as written (a template for replicas)
  // Why the VM cannot start, when a fleet restored from the state store could not reopen one of
  // its files (protocol/stored_fleet.hpp): the fleet shows it failed, with this.
  std::string unavailable;
};

struct FleetSpec {
  std::string name;
  std::size_t concurrency = 0;        // VMs starting at once
  std::vector<NetworkSpec> networks;  // up before the first VM, down after the last
  std::vector<FleetVm> vms;           // in file order, replicas expanded
};

// A sensible number of VMs to start at once on this machine: twice the cores, at least 2.
std::size_t default_concurrency();

Expected<FleetSpec> parse_fleet(std::string_view text, const std::filesystem::path& source);
Expected<FleetSpec> load_fleet_file(const std::filesystem::path& path);

std::string_view to_string(RestartPolicy policy);
// The reverse (nothing for a name that is not one), and every name.
std::optional<RestartPolicy> restart_policy_named(std::string_view name);
std::vector<std::string_view> restart_policy_names();
std::string_view to_string(OnHostLoss policy);
std::optional<OnHostLoss> on_host_loss_named(std::string_view name);
// Whether a VM writes to an image of its own (a raw disk or partition it may write): then it
// cannot be run again on another host, its data being on the lost one.
bool writes_local_data(const VmSpec& spec);

}  // namespace crosvisor::config
