// The daemon's fleets, by owner and name, each with the uid that brought it up. A fleet brought
// up without --foreground belongs to the daemon: it outlives the session that created it.
//   (fleet_up_atom, FleetSpec, uint32_t uid) -> caf::actor (the fleet); refused (conflict) when
//                                              that user has a fleet of that name up, or a VM
//                                              with a member's name: nothing is started then
//   (list_atom) -> std::vector<FleetEntry>
#pragma once

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "config/fleet_config.hpp"

namespace crosvisor::daemon {

using fleet_up_atom = caf::atom_constant<caf::atom("fleetup")>;

struct FleetEntry {
  std::string name;
  std::uint32_t owner_uid = 0;
  caf::actor fleet;
  std::vector<std::string> members;
};

caf::actor spawn_fleet_registry(caf::actor_system& system, caf::actor service);

}  // namespace crosvisor::daemon

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::config::FleetSpec)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::daemon::FleetEntry)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<crosvisor::daemon::FleetEntry>)
