// The rules a fleet's networks follow, checked once for fleet files (config/) and for fleets that
// arrive on the control socket (protocol/): network names declared once, subnets apart, every VM
// joining a network of the fleet, fixed addresses inside their subnet and taken once, MACs once.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "config/fleet_config.hpp"

namespace crosvisor::config {

struct NetworkProblem {
  std::optional<std::size_t> network;  // index into fleet.networks: its `key` is to blame
  std::optional<std::size_t> vm;       // index into fleet.vms: its `networks` are to blame
  std::string key;                     // "name", "subnet" or "networks"
  std::string message;
};

std::vector<NetworkProblem> network_problems(const FleetSpec& fleet);

}  // namespace crosvisor::config
