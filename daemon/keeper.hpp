// Detached VMs (vm run --detach, vm start): the daemon's own handle on each, so that it outlives
// the session that created it and dies only when stopped (or with the daemon), as AVF's
// `vm run --daemonize` and `docker run -d` VMs do. One keeper per VM, as its client: it hears
// that VM's states through the handle and ends, dropping the handle (and so the CID), once the
// VM is dead.
#pragma once

#include <caf/fwd.hpp>
#include <string>

#include "crosvisor/messages.hpp"

namespace crosvisor::daemon {

using keep_atom = caf::atom_constant<caf::atom("keep")>;

// Create the VM with the keeper as its client, then send it (keep_atom, VmHandle); if the VM
// could not be created, send it an exit.
caf::actor spawn_keeper(caf::actor_system& system, std::string vm);

}  // namespace crosvisor::daemon
