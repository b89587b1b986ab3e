// The CID registry actor: grants each VM a vsock CID unique on the host, and takes it back when
// the VM's actor is down. (With client proxies, issue 6: when the VM is dead and no proxy remains.)
#pragma once

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <filesystem>
#include <memory>

#include "crosvisor/messages.hpp"
#include "vsock/cid_locks.hpp"
#include "vsock/cid_pool.hpp"

namespace crosvisor {

struct CidRegistryOptions {
  vsock::CidRange range;
  // The namespace of host-wide reservations (vsock/cid_locks.hpp) shared by every crosvisor
  // process on the host; tests and benchmarks use scopes of their own.
  std::string scope = vsock::kDefaultCidScope;
  // Where the last granted CID is kept across restarts.
  std::filesystem::path state_file;
};

using grant_atom = caf::atom_constant<caf::atom("grant")>;
using release_atom = caf::atom_constant<caf::atom("release")>;
using share_atom = caf::atom_constant<caf::atom("share")>;
using take_over_atom = caf::atom_constant<caf::atom("takeover")>;

// A copy of a CID's host-wide reservation, for a VMM that outlives its supervisor.
using SharedFd = std::shared_ptr<const UniqueFd>;

using CidRegistryActor = caf::typed_actor<
    // (owner, fixed) -> a CID, reserved host-wide until the owner is down or it is released;
    // fixed 0 means "any free CID". Refused (conflict, limit, invalid_config) with none taken.
    caf::replies_to<grant_atom, caf::actor, std::uint32_t>::with<std::uint32_t>,
    caf::reacts_to<release_atom, std::uint32_t>,
    // (cid) -> a copy of the reservation of a CID granted here: a durable VMM inherits it, so
    // that the CID stays reserved while the VMM runs on without a supervisor.
    caf::replies_to<share_atom, std::uint32_t>::with<SharedFd>,
    // (owner, cid) -> the CID, for a VMM taken over from an earlier supervisor: held for `owner`
    // as a grant, the reservation being the VMM's own copy (or a new one, when none is held).
    // Refused (conflict) when a VM of this supervisor has it.
    caf::replies_to<take_over_atom, caf::actor, std::uint32_t>::with<std::uint32_t>,
    // -> how many CIDs are granted
    caf::replies_to<in_use_atom>::with<std::uint64_t>>;

CidRegistryActor spawn_cid_registry(caf::actor_system& system, CidRegistryOptions options);

}  // namespace crosvisor

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::SharedFd)
