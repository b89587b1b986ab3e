// The daemon's fleets, by owner and name, each with the uid that brought it up. A fleet brought
// up without --foreground belongs to the daemon: it outlives the session that created it, and,
// with a state store, the daemon too: its record (store/records.hpp) is written before its
// first VM starts and removed when it is brought down, unless it is persistent.
#pragma once

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "actors/fleet_actor.hpp"
#include "actors/state_keeper.hpp"
#include "config/fleet_config.hpp"

namespace crosvisor::daemon {

using fleet_up_atom = caf::atom_constant<caf::atom("fleetup")>;

using fleet_forget_atom = caf::atom_constant<caf::atom("fforget")>;
using fleet_settled_atom = caf::atom_constant<caf::atom("fsettled")>;
// What the daemon before left running of a fleet (live restore): its VMs' VMMs and its networks,
// by name.
struct TakenOver {
  std::map<std::string, store::VmRecord> vms;
  std::map<std::string, store::NetworkRecord> networks;
  bool empty() const { return vms.empty() && networks.empty(); }
};

struct FleetEntry {
  std::string name;
  std::uint32_t owner_uid = 0;
  FleetActor fleet;
  std::vector<std::string> members;
  bool persistent = false;
};

using FleetRegistryActor = caf::typed_actor<
    // (fleet, owner uid, its record for the state store if it is to be kept, the VMMs of its
    // VMs that the daemon before left running) -> the fleet's actor; refused (conflict) when
    // that user has a fleet of that name up, or a VM with a member's name, and (io) when the
    // record cannot be written: nothing is started then
    caf::replies_to<fleet_up_atom, config::FleetSpec, std::uint32_t,
                    std::optional<store::FleetRecord>, TakenOver>::with<FleetActor>,
    // (owner, fleet, any owner) -> whether the fleet was persistent: it no longer comes up when
    // the daemon starts (running, it runs on); not_found when it was not. With any owner (root),
    // another user's fleet of that name too, when only one user has one.
    caf::replies_to<fleet_forget_atom, std::uint32_t, std::string, bool>::with<bool>,
    // (owner, fleet) -> true once that fleet's actor has ended and, brought down, its record is
    // deleted: a fleet down is answered then, so that a daemon killed just after the answer does
    // not bring the fleet back
    caf::replies_to<fleet_settled_atom, std::uint32_t, std::string>::with<bool>,
    caf::replies_to<list_atom>::with<std::vector<FleetEntry>>>;

// Without a keeper (no state store), fleets are kept in memory only. With live_restore, the VMs
// of kept fleets are durable: they outlive the daemon (docs/state.md).
FleetRegistryActor spawn_fleet_registry(caf::actor_system& system, ServiceActor service,
                                        StateKeeperActor keeper = {}, bool live_restore = false);

}  // namespace crosvisor::daemon

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::config::FleetSpec)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::optional<crosvisor::store::FleetRecord>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::daemon::TakenOver)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::daemon::FleetEntry)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<crosvisor::daemon::FleetEntry>)
