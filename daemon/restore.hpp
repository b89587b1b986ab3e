// What a starting crosvisord takes back from its state store: the fleets the daemon before it
// owned. A persistent fleet comes up again (host boot: virsh autostart); a fleet that was up when
// the daemon before it ended without bringing it down (killed, crashed) comes up again in the
// same boot of the host; any other record is forgotten. Files are reopened with the fleet's
// owner's rights, never the daemon's. VMs named on the command line of the daemon before that
// still run are handed back to be taken over when this daemon's command line names them too,
// and ended when it does not.
#pragma once

#include <caf/fwd.hpp>
#include <map>
#include <string>
#include <vector>

#include "actors/state_keeper.hpp"
#include "daemon/fleet_registry.hpp"
#include "process/cgroups.hpp"
#include "store/state_store.hpp"

namespace crosvisor::daemon {

struct RestoreSummary {
  std::size_t restored = 0;   // fleets up again
  std::size_t forgotten = 0;  // records of fleets that ended with the host's last boot
  std::size_t failed = 0;     // fleets that could not be brought back (said in the log)
  // The VMMs of VMs of the command line still running, by name: to be taken over.
  std::map<std::string, store::VmRecord> own_vms;
};

// A fleet as it came on the control socket (its files by path), its files reopened with its
// owner's rights (process/open_as.hpp): how a restarting daemon, and a cluster's host, get a
// fleet's files without an fd from its owner.
Expected<config::FleetSpec> reopen_fleet(const nlohmann::json& message, std::uint32_t uid,
                                         std::uint32_t gid);

// `own_vms`: the names of the VMs on this daemon's command line. `cgroups` (when there are):
// those of the VMMs not taken over are emptied and removed before any fleet comes up.
RestoreSummary restore_fleets(caf::scoped_actor& self, const store::StateStore& state,
                              const FleetRegistryActor& fleets, const StateKeeperActor& keeper,
                              const std::vector<std::string>& own_vms,
                              const process::CgroupHost* cgroups);

}  // namespace crosvisor::daemon
