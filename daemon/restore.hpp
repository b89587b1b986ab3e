// What a starting crosvisord takes back from its state store: the fleets the daemon before it
// owned. A persistent fleet comes up again (host boot: virsh autostart); a fleet that was up when
// the daemon before it ended without bringing it down (killed, crashed) comes up again in the
// same boot of the host; any other record is forgotten. Files are reopened with the fleet's
// owner's rights, never the daemon's.
#pragma once

#include <caf/fwd.hpp>

#include "actors/state_keeper.hpp"
#include "daemon/fleet_registry.hpp"
#include "store/state_store.hpp"

namespace crosvisor::daemon {

struct RestoreSummary {
  std::size_t restored = 0;   // fleets up again
  std::size_t forgotten = 0;  // records of fleets that ended with the host's last boot
  std::size_t failed = 0;     // fleets that could not be brought back (said in the log)
};

RestoreSummary restore_fleets(caf::scoped_actor& self, const store::StateStore& state,
                              const FleetRegistryActor& fleets, const StateKeeperActor& keeper);

}  // namespace crosvisor::daemon
