// The sessions' way to the cluster (docs/cluster.md): `vm hosts`, and cluster fleets brought up,
// asked about and brought down, through etcd, by a detached actor with a client of its own, so
// that a slow or unreachable etcd holds up neither the sessions nor the host's lease renewals
// (cluster::HostAgent's thread) nor this host's VMs (ClusterHost).
#pragma once

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cluster/cluster_fleet.hpp"
#include "cluster/etcd_client.hpp"
#include "cluster/host_record.hpp"

namespace crosvisor::daemon {

using hosts_atom = caf::atom_constant<caf::atom("hosts")>;
using cluster_up_atom = caf::atom_constant<caf::atom("clup")>;
using cluster_status_atom = caf::atom_constant<caf::atom("clstatus")>;
using cluster_down_atom = caf::atom_constant<caf::atom("cldown")>;
using cluster_events_atom = caf::atom_constant<caf::atom("clevents")>;

// A cluster fleet's VM as the cluster sees it: where it is placed, and what that host says.
struct ClusterVmView {
  std::string name;
  std::string host;  // empty: not placed
  std::optional<cluster::VmStatus> status;
};

using ClusterReaderActor = caf::typed_actor<
    // Every host that ever joined, up or lost, with the seconds left on an up host's lease; an
    // error (io: unknown) when etcd does not answer.
    caf::replies_to<hosts_atom>::with<std::vector<cluster::HostStatus>>,
    // Kept in etcd for the coordinator to place -> true; conflict when the cluster has a fleet
    // of that name.
    caf::replies_to<cluster_up_atom, cluster::ClusterFleet>::with<bool>,
    // (fleet) -> its VMs; not_found when the cluster has no such fleet.
    caf::replies_to<cluster_status_atom, std::string>::with<std::vector<ClusterVmView>>,
    // (fleet, caller's uid) -> removed: its hosts stop its VMs; only its owner or root.
    caf::replies_to<cluster_down_atom, std::string, std::uint32_t>::with<bool>,
    // (since, unix ms) -> the cluster's events from then on, oldest first.
    caf::replies_to<cluster_events_atom, std::int64_t>::with<std::vector<cluster::ClusterEvent>>>;

ClusterReaderActor spawn_cluster_reader(caf::actor_system& system, cluster::EtcdClient client);

}  // namespace crosvisor::daemon

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<crosvisor::cluster::HostStatus>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::cluster::ClusterFleet)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<crosvisor::cluster::ClusterEvent>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<crosvisor::daemon::ClusterVmView>)
