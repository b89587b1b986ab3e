// The daemon's reader of the cluster (docs/cluster.md): what `vm hosts` asks, read from etcd by
// a detached actor with a client of its own, so that a slow or unreachable etcd holds up
// neither the sessions nor the host's lease renewals (cluster::HostAgent's thread).
#pragma once

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <vector>

#include "cluster/etcd_client.hpp"
#include "cluster/host_record.hpp"

namespace crosvisor::daemon {

using hosts_atom = caf::atom_constant<caf::atom("hosts")>;

using ClusterReaderActor = caf::typed_actor<
    // Every host that ever joined, up or lost, with the seconds left on an up host's lease; an
    // error (io: unknown) when etcd does not answer.
    caf::replies_to<hosts_atom>::with<std::vector<cluster::HostStatus>>>;

ClusterReaderActor spawn_cluster_reader(caf::actor_system& system, cluster::EtcdClient client);

}  // namespace crosvisor::daemon

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<crosvisor::cluster::HostStatus>)
