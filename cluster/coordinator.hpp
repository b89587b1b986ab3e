// The cluster's coordinator (docs/cluster.md): whichever host holds /crosvisor/coordinator,
// created only while absent and bound to that host's lease, so that a lost coordinator's
// successor takes over within a TTL. Stateless: each round reads fleets, live hosts and
// placements from etcd, plans (placement.hpp) and writes each decision in a transaction guarded
// by "the coordinator is still me" and by the placement's revision as read, so that a deposed
// coordinator's writes and a stale view's both fail. A read that fails ends the round: unknown
// is never empty.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "cluster/cluster_fleet.hpp"
#include "cluster/etcd_client.hpp"

namespace crosvisor::cluster {

struct CoordinatorRound {
  bool coordinator = false;  // this host is the coordinator (after campaigning)
  std::size_t placed = 0;    // placements written
  std::size_t refused = 0;   // guarded writes that failed (deposed, or a stale view)
  std::size_t dropped = 0;   // placements of fleets gone, removed
};

class Coordinator {
 public:
  explicit Coordinator(std::string host) : host_(std::move(host)) {}

  // One round with this host's current lease.
  Expected<CoordinatorRound> round(EtcdClient& etcd, std::int64_t lease);

 private:
  Expected<bool> campaign(EtcdClient& etcd, std::int64_t lease);
  void event(EtcdClient& etcd, ClusterEvent event);

  std::string host_;
  std::uint64_t events_ = 0;
  std::set<std::string> said_;  // events of a standing condition, once each
  std::set<std::string> lost_;  // hosts known lost, said once (a new coordinator says it again)
};

// The events from `since_ms` on, oldest first (at most `limit`).
Expected<std::vector<ClusterEvent>> read_events(EtcdClient& etcd, std::int64_t since_ms,
                                                std::size_t limit = 1000);

// Appends an event (its key sorts by time).
Expected<void> record_event(EtcdClient& etcd, const ClusterEvent& event, const std::string& host,
                            std::uint64_t sequence);

}  // namespace crosvisor::cluster
