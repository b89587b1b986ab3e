// A fleet on the control socket: its VM descriptions (spec_json.hpp) sharing one set of fds, with
// each VM's start order and restart policy. The client validated the fleet file; the daemon
// checks the message again, as it checks everything a client sends.
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "config/fleet_config.hpp"
#include "core/unique_fd.hpp"
#include "crosvisor/error.hpp"

namespace crosvisor::protocol {

struct FleetMessage {
  nlohmann::json fleet;
  std::vector<UniqueFd> fds;
};

Expected<FleetMessage> fleet_to_message(const config::FleetSpec& fleet);
Expected<config::FleetSpec> fleet_from_message(const nlohmann::json& fleet,
                                               std::vector<UniqueFd> fds);

}  // namespace crosvisor::protocol
