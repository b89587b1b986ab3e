// The daemon's fleets, by owner and name, each with the uid that brought it up. A fleet brought
// up without --foreground belongs to the daemon: it outlives the session that created it.
#pragma once

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "actors/fleet_actor.hpp"
#include "config/fleet_config.hpp"

namespace crosvisor::daemon {

using fleet_up_atom = caf::atom_constant<caf::atom("fleetup")>;

struct FleetEntry {
  std::string name;
  std::uint32_t owner_uid = 0;
  FleetActor fleet;
  std::vector<std::string> members;
};

using FleetRegistryActor = caf::typed_actor<
    // (fleet, owner uid) -> the fleet's actor; refused (conflict) when that user has a fleet of
    // that name up, or a VM with a member's name: nothing is started then
    caf::replies_to<fleet_up_atom, config::FleetSpec, std::uint32_t>::with<FleetActor>,
    caf::replies_to<list_atom>::with<std::vector<FleetEntry>>>;

FleetRegistryActor spawn_fleet_registry(caf::actor_system& system, ServiceActor service);

}  // namespace crosvisor::daemon

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::config::FleetSpec)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::daemon::FleetEntry)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<crosvisor::daemon::FleetEntry>)
