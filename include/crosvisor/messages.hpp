// The typed vocabulary of crosvisor's actors, for embedding applications and for the actors
// themselves. Every request names what it means; replies are documented next to each atom.
#pragma once

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>

#include "crosvisor/vm_event.hpp"
#include "crosvisor/vm_spec.hpp"

namespace crosvisor {

// To the service: (create_atom, VmSpec, caf::actor client) -> caf::actor, the client's handle on
// the new VM. The handle is a client proxy: the client receives the VM's VmEvents through it (the
// last one is `dead`, with the death reason), and sends it the VM requests below. The VM lives
// while any handle does: when the client goes down, or every copy of its handle is dropped, the
// proxy ends, and when the last proxy of a VM ends the VM is stopped. `client` may be invalid:
// then only the handle's lifetime counts.
using create_atom = caf::atom_constant<caf::atom("create")>;
// To a handle: (dup_atom, caf::actor other_client) -> caf::actor, a second handle on the same VM
// for another client (AVF: passing the IVirtualMachine binder on).
using dup_atom = caf::atom_constant<caf::atom("dup")>;
// To the service: (list_atom) -> std::vector<caf::actor>, the VMs' own actors (ask each for
// info_atom). These are not handles: holding them does not keep a VM alive.
using list_atom = caf::atom_constant<caf::atom("list")>;
// To a handle or a VM: (info_atom) -> VmInfo
using info_atom = caf::atom_constant<caf::atom("info")>;
// To a handle or a VM: (stop_atom) graceful stop, escalating after the VM's stop_timeout;
//          (stop_atom, uint32_t timeout_ms) graceful with that deadline instead;
//          (stop_atom, kill_atom) SIGKILL at once.
using stop_atom = caf::atom_constant<caf::atom("stop")>;
using kill_atom = caf::atom_constant<caf::atom("kill")>;
// To a handle or a VM: (logs_atom, uint32_t count) -> std::vector<std::string>, the last `count`
// console lines kept in memory (all kept when 0); an error for a debug = none VM, which keeps none.
using logs_atom = caf::atom_constant<caf::atom("logs")>;
// To a handle or a VM: (subscribe_atom, caf::actor) -> the subscriber receives the current state as
// a VmEvent, then every later VmEvent and, for debug=full VMs, ConsoleLine messages.
//          (subscribe_atom, caf::actor, events_atom) the same without the console lines: for
//          actors that watch states (a chatty guest's lines are most of a VM's messages).
// To a handle: (events_atom) from now on, pass the client VmEvents only, no console lines.
using subscribe_atom = caf::atom_constant<caf::atom("subscribe")>;
using events_atom = caf::atom_constant<caf::atom("events")>;

// To the service: (taken_atom, uint32_t owner_uid, std::vector<std::string> names) ->
// std::vector<std::string>, those of `names` that live VMs of that owner hold.
using taken_atom = caf::atom_constant<caf::atom("taken")>;

// To the CID registry: (grant_atom, caf::actor owner, uint32_t fixed) -> uint32_t, where fixed 0
// means "any free CID"; the CID returns when the owner is down or on (release_atom, cid).
using grant_atom = caf::atom_constant<caf::atom("grant")>;
using release_atom = caf::atom_constant<caf::atom("release")>;
// To the CID registry or the service: (in_use_atom) -> uint64_t, how many CIDs are granted.
using in_use_atom = caf::atom_constant<caf::atom("inuse")>;

}  // namespace crosvisor

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::VmSpec)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::VmEvent)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::ConsoleLine)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::VmInfo)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<crosvisor::VmInfo>)
