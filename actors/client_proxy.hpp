// A client proxy stands for one client's handle on a VM, as a binder reference does in AVF. The
// client holds the proxy's caf::actor: that is its handle. The proxy
//   - forwards the client's requests (stop, info, logs, subscribe, dup) to the vm actor;
//   - forwards the VM's events to its client, in order, ending with the `dead` event (died);
//   - monitors its client and quits when the client is gone; when every copy of the handle is
//     dropped, CAF ends it with exit_reason::unreachable.
// The vm actor monitors its proxies and stops the VM when the last one is gone.
#pragma once

#include <caf/fwd.hpp>

#include "actors/vm_protocol.hpp"

namespace crosvisor {

// A proxy for `client` (which may be invalid: then only the handle's lifetime counts) on `vm`.
// The vm actor is told to monitor it before this returns.
ClientProxyActor spawn_client_proxy(caf::actor_system& system, VmActorImpl vm, caf::actor client);

}  // namespace crosvisor
