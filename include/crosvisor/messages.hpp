// The typed vocabulary of crosvisor's actors, for embedding applications and for the actors
// themselves. Every request names what it means; replies are documented next to each atom.
#pragma once

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>

#include "crosvisor/vm_event.hpp"
#include "crosvisor/vm_spec.hpp"

namespace crosvisor {

// To the service: (create_atom, VmSpec, caf::actor subscriber) -> caf::actor (the VM)
using create_atom = caf::atom_constant<caf::atom("create")>;
// To the service: (list_atom) -> std::vector<caf::actor> (the live VMs; ask each for info_atom)
using list_atom = caf::atom_constant<caf::atom("list")>;
// To a VM: (info_atom) -> VmInfo
using info_atom = caf::atom_constant<caf::atom("info")>;
// To a VM: (stop_atom) graceful stop, escalating after the VM's stop_timeout;
//          (stop_atom, kill_atom) SIGKILL at once.
using stop_atom = caf::atom_constant<caf::atom("stop")>;
using kill_atom = caf::atom_constant<caf::atom("kill")>;
// To a VM: (logs_atom, uint32_t count) -> std::vector<std::string>, the last `count` console
// lines kept in memory (all kept when 0); an error for a debug = none VM, which keeps none.
using logs_atom = caf::atom_constant<caf::atom("logs")>;
// To a VM: (subscribe_atom, caf::actor) -> the subscriber receives the current state as a
// VmEvent, then every later VmEvent and, for debug=full VMs, ConsoleLine messages.
using subscribe_atom = caf::atom_constant<caf::atom("subscribe")>;

// To the CID registry: (grant_atom, caf::actor owner, uint32_t fixed) -> uint32_t, where fixed 0
// means "any free CID"; the CID returns when the owner is down or on (release_atom, cid).
using grant_atom = caf::atom_constant<caf::atom("grant")>;
using release_atom = caf::atom_constant<caf::atom("release")>;
// To the CID registry: (in_use_atom) -> uint64_t, how many CIDs it has granted.
using in_use_atom = caf::atom_constant<caf::atom("inuse")>;

}  // namespace crosvisor

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::VmSpec)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::VmEvent)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::ConsoleLine)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::VmInfo)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<crosvisor::VmInfo>)
