// The state keeper: the one writer of the state store (store/state_store.hpp). Detached, on a
// thread of its own: each write waits for the disk (fsync), which no scheduler thread may do.
// Writes happen in the order they are asked for.
#pragma once

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "store/records.hpp"
#include "store/state_store.hpp"

namespace crosvisor {

using store_fleet_atom = caf::atom_constant<caf::atom("stfleet")>;
using drop_fleet_atom = caf::atom_constant<caf::atom("dropfleet")>;
using store_vm_atom = caf::atom_constant<caf::atom("stvm")>;
using drop_vm_atom = caf::atom_constant<caf::atom("dropvm")>;
using store_network_atom = caf::atom_constant<caf::atom("stnet")>;
using drop_network_atom = caf::atom_constant<caf::atom("dropnet")>;
using flush_atom = caf::atom_constant<caf::atom("flush")>;
using finish_atom = caf::atom_constant<caf::atom("finish")>;

using StateKeeperActor = caf::typed_actor<
    // Written (true), or an io error saying why not (a full disk): the old record stays.
    caf::replies_to<store_fleet_atom, store::FleetRecord>::with<bool>,
    // (owner, fleet) -> whether there was a record
    caf::replies_to<drop_fleet_atom, std::uint32_t, std::string>::with<bool>,
    // A running VM's record: failures are logged (the VM runs on; it is not adopted after a
    // restart).
    caf::reacts_to<store_vm_atom, store::VmRecord>,
    caf::reacts_to<drop_vm_atom, std::uint32_t, std::string>,
    // A fleet's network whose namespace outlives the daemon; failures are logged (its VMs are
    // then made again by the next daemon, on a new network).
    caf::reacts_to<store_network_atom, store::NetworkRecord>,
    caf::reacts_to<drop_network_atom, std::uint32_t, std::string>,
    // Answered once every write that reached the keeper before it is done.
    caf::replies_to<flush_atom>::with<bool>,
    // Ends the keeper once every write that reached it before is done. A detached actor holds
    // itself alive on its thread: its owner must end it so (or the actor system never ends).
    caf::reacts_to<finish_atom>>;

StateKeeperActor spawn_state_keeper(caf::actor_system& system,
                                    std::shared_ptr<const store::StateStore> store);

}  // namespace crosvisor

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::store::FleetRecord)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::store::VmRecord)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::store::NetworkRecord)
