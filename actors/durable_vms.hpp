// Durable VMs (live restore): VMs whose VMMs outlive the supervisor, for a successor to take over.
// A daemon's fleets create their VMs this way; the daemon lets them all go when it exits for an
// upgrade. The service's interface for it, beside its public one (crosvisor/service.hpp).
#pragma once

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <cstdint>
#include <optional>
#include <vector>

#include "crosvisor/messages.hpp"
#include "store/records.hpp"

namespace crosvisor {

using create_durable_atom = caf::atom_constant<caf::atom("mkdurable")>;
using let_go_all_atom = caf::atom_constant<caf::atom("letgoall")>;

struct DurableStart {
  std::uint32_t restarts = 0;                    // the VM's restarts so far, kept in its record
  std::vector<std::int64_t> recent_restarts_ms;  // those within its restart window (unix ms)
  // The VMM the supervisor before left running: taken over instead of launched.
  std::optional<store::VmRecord> takeover;
};

using DurableVms = caf::typed_actor<
    // As create_atom, for a VM whose VMM outlives the supervisor; refused (state) by a service
    // without a state directory.
    caf::replies_to<create_durable_atom, VmSpec, caf::actor, DurableStart>::with<VmHandle>,
    // Every durable VM's VMM let go (it runs on, unwatched) and its actor ended -> how many.
    caf::replies_to<let_go_all_atom>::with<std::uint32_t>>;

}  // namespace crosvisor

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::DurableStart)
