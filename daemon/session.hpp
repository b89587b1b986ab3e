// A control-socket session as an actor: it owns the handles of the VMs its client created (they
// die with it), answers requests through the service, and forwards the events of the VMs it
// holds or follows. A client sees and controls only VMs of its own uid; root, or the daemon's own
// user asking with `all`, may list every VM.
#pragma once

#include <caf/actor.hpp>
#include <caf/fwd.hpp>
#include <memory>

#include "crosvisor/service.hpp"
#include "daemon/cluster_reader.hpp"
#include "daemon/fleet_registry.hpp"
#include "daemon/server.hpp"

namespace crosvisor::daemon {

struct SessionContext {
  caf::actor_system* system = nullptr;
  ServiceActor service;
  FleetRegistryActor fleets;
  uid_t daemon_uid = 0;
  VmmBinaries vmm_binaries;    // what --qemu/--crosvm gave the daemon (told in `version`)
  bool keeps_state = false;    // the fleet registry has a state store: fleets outlive the daemon
  ClusterReaderActor cluster;  // none unless the daemon is part of a cluster (--cluster)
  std::string host_name;       // its name in the cluster
};

// A session actor for one connection, and the sink its connection delivers to.
std::unique_ptr<SessionSink> start_session(const SessionContext& context,
                                           const PeerCredentials& peer,
                                           std::shared_ptr<ConnectionPort> connection);

}  // namespace crosvisor::daemon
