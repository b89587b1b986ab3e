// This host's part in running a cluster's fleets (docs/cluster.md), as a detached actor with an
// etcd client of its own. Each second it takes a coordinator round (cluster/coordinator.hpp:
// campaign, and, if it is the coordinator, place) and reconciles: every VM placed here and not
// running is started, as a fleet of one through today's fleet actor (its restart policy stays
// local), its files reopened with the fleet owner's rights; every VM running here that is no
// longer placed here is stopped. What each VM does is written to /crosvisor/status/, bound to
// this host's lease. A fence (ClusterFence) stops every VM of the cluster here at once and
// nothing starts until the host has joined again; then it starts only what still names it.
#pragma once

#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "actors/fleet_actor.hpp"
#include "cluster/etcd_client.hpp"
#include "cluster/fence_keeper.hpp"
#include "crosvisor/service.hpp"

namespace crosvisor::daemon {

// The cluster's VMs running here, as the fence sees them. The fence runs on the host agent's
// timer thread and stops them from there, directly: never through the cluster host actor, which
// may be blocked in a call to etcd when the fence falls due (the trap that let a VM run on two
// hosts). While fenced nothing new is started, until the host has joined again.
class ClusterFence {
 public:
  ClusterFence(std::chrono::milliseconds grace, std::shared_ptr<cluster::FenceKeeper> keeper)
      : grace_(grace), keeper_(std::move(keeper)) {}
  // Every VM here stopped at once: gracefully within the grace, then SIGKILL.
  void fence();
  void rejoined();
  bool fenced() const;
  // How many fences so far, and when the last one was (unix ms).
  std::pair<std::uint64_t, std::int64_t> history() const;
  // Registers a VM started here; false (and it is stopped) when a fence came first.
  bool add(const std::pair<std::string, std::string>& vm, const FleetActor& fleet);
  void remove(const std::pair<std::string, std::string>& vm);
  // A cluster VMM the keeper process kills if the daemon cannot (frozen): from its start to its
  // end.
  void watch_vmm(pid_t pid);
  void unwatch_vmm(pid_t pid);

 private:
  mutable std::mutex mutex_;
  bool fenced_ = false;
  std::uint64_t fences_ = 0;
  std::int64_t last_fence_ms_ = 0;
  std::chrono::milliseconds grace_;
  std::shared_ptr<cluster::FenceKeeper> keeper_;
  std::map<std::pair<std::string, std::string>, FleetActor> fleets_;
};

struct ClusterHostConfig {
  std::string host;
  std::function<std::int64_t()> lease;  // this host's current lease (0: none)
  ServiceActor service;
  std::shared_ptr<ClusterFence> fence;
  std::chrono::milliseconds period{1000};
};

// Ends when sent an exit (detached: its owner must).
caf::actor spawn_cluster_host(caf::actor_system& system, ClusterHostConfig config,
                              cluster::EtcdClient client);

}  // namespace crosvisor::daemon
