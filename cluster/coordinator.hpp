// The cluster's coordinator (docs/cluster.md): whichever host holds /crosvisor/coordinator,
// created only while absent and bound to that host's lease, so that a lost coordinator's
// successor takes over within a TTL. Stateless: each round reads fleets, live hosts and
// placements from etcd, plans (placement.hpp) and writes each decision in a transaction guarded
// by "the coordinator is still me" and by the placement's revision as read, so that a deposed
// coordinator's writes and a stale view's both fail. A read that fails ends the round: unknown
// is never empty.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "cluster/cluster_fleet.hpp"
#include "cluster/etcd_client.hpp"
#include "cluster/placement.hpp"

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

struct PlacementsWritten {
  std::size_t placed = 0;
  std::size_t refused = 0;  // its placement changed since `revision` was read, or deposed
};

// Writes `decisions` as coordinator `coordinator`, in batches: each guarded by "the coordinator
// is still `coordinator`" and by every placement's revision as read (absent: not created since),
// with its events in the same transaction (an event is there if and only if its decision is).
// A batch refused (one placement changed under it) is written again decision by decision, so
// that only the stale ones fail. `events_written` numbers the events (and counts them).
Expected<PlacementsWritten> write_placements(EtcdClient& etcd, const std::string& coordinator,
                                             std::span<const Decision> decisions,
                                             const std::map<VmKey, std::int64_t>& revision,
                                             std::uint64_t& events_written);

// The events from `since_ms` on, oldest first (at most `limit`).
Expected<std::vector<ClusterEvent>> read_events(EtcdClient& etcd, std::int64_t since_ms,
                                                std::size_t limit = 1000);

// An event's write, for a transaction of its own or one with what it tells (its key sorts by
// time; `sequence` tells apart one host's events of one millisecond).
Operation event_operation(const ClusterEvent& event, const std::string& host,
                          std::uint64_t sequence);

// Appends an event.
Expected<void> record_event(EtcdClient& etcd, const ClusterEvent& event, const std::string& host,
                            std::uint64_t sequence);

}  // namespace crosvisor::cluster
