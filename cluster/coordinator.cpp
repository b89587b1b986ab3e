#include "cluster/coordinator.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <span>

#include "cluster/host_record.hpp"
#include "core/unix_time.hpp"

namespace crosvisor::cluster {
namespace {

// etcd refuses a transaction of more than 128 operations per branch (--max-txn-ops): each
// decision is a placement and its event.
constexpr std::size_t kDecisionsPerTxn = 50;

}  // namespace

std::string stamp_of(std::int64_t ms) {
  char stamp[32];
  std::snprintf(stamp, sizeof(stamp), "%015lld", static_cast<long long>(ms));
  return stamp;
}

Operation event_operation(const ClusterEvent& event, const std::string& host,
                          std::uint64_t sequence) {
  return {Operation::Kind::put,
          std::string(kEventsPrefix) + stamp_of(event.at_ms) + "-" + host + "-" +
              std::to_string(sequence),
          to_json(event).dump(), 0};
}

Expected<void> record_event(EtcdClient& etcd, const ClusterEvent& event, const std::string& host,
                            std::uint64_t sequence) {
  const auto op = event_operation(event, host, sequence);
  return etcd.put(op.key, op.value);
}

Expected<std::vector<ClusterEvent>> read_events(EtcdClient& etcd, std::int64_t since_ms,
                                                std::size_t limit) {
  auto range =
      etcd.get_range(std::string(kEventsPrefix) + stamp_of(since_ms), prefix_end(kEventsPrefix));
  if (!range)
    return std::unexpected(range.error());
  std::vector<ClusterEvent> events;
  for (const auto& kv : range->kvs) {
    auto parsed = nlohmann::json::parse(kv.value, nullptr, false);
    if (parsed.is_discarded())
      continue;
    if (auto event = cluster_event_from(parsed))
      events.push_back(std::move(*event));
  }
  if (events.size() > limit)
    events.erase(events.begin(), events.end() - static_cast<std::ptrdiff_t>(limit));
  return events;
}

void Coordinator::event(EtcdClient& etcd, ClusterEvent event) {
  event.at_ms = unix_now_ms();
  spdlog::info("cluster: {} {}/{} {}: {}", event.kind, event.fleet, event.vm, event.host,
               event.detail);
  if (auto put = record_event(etcd, event, host_, ++events_); !put)
    spdlog::warn("cluster: event not recorded: {}", put.error().message);
}

Expected<bool> Coordinator::campaign(EtcdClient& etcd, std::int64_t lease) {
  auto won = etcd.commit(Txn{{{kCoordinatorKey, Compare::Target::create_revision, {}, 0}},
                             {{Operation::Kind::put, kCoordinatorKey, host_, lease}},
                             {}});
  if (!won)
    return std::unexpected(won.error());
  auto holder = etcd.get(kCoordinatorKey);
  if (!holder)
    return std::unexpected(holder.error());
  const bool mine =
      !holder->kvs.empty() && holder->kvs[0].value == host_ && holder->kvs[0].lease == lease;
  if (*won)
    spdlog::info("cluster: {} is the coordinator", host_);
  return mine;
}

Expected<PlacementsWritten> write_placements(EtcdClient& etcd, const std::string& coordinator,
                                             std::span<const Decision> decisions,
                                             const std::map<VmKey, std::int64_t>& revision,
                                             std::uint64_t& events_written) {
  const Compare still_me{kCoordinatorKey, Compare::Target::value, coordinator, 0};
  const auto guard = [&](const Decision& decision) {
    const std::string key = placement_key(decision.vm);
    const auto seen = revision.find(decision.vm);
    return seen == revision.end() ? Compare{key, Compare::Target::create_revision, {}, 0}
                                  : Compare{key, Compare::Target::mod_revision, {}, seen->second};
  };
  const auto write = [&](std::span<const Decision> batch) -> Expected<bool> {
    Txn txn{{still_me}, {}, {}};
    std::vector<ClusterEvent> events;
    for (const auto& decision : batch) {
      txn.compare.push_back(guard(decision));
      txn.success.push_back({Operation::Kind::put, placement_key(decision.vm), decision.to, 0});
      events.push_back({unix_now_ms(), decision.from ? "moved" : "placed", decision.vm.first,
                        decision.vm.second, decision.to, decision.why});
      txn.success.push_back(
          event_operation(events.back(), coordinator, events_written + events.size()));
    }
    auto written = etcd.commit(txn);
    if (!written || !*written)
      return written;
    events_written += events.size();
    for (const auto& event : events)
      spdlog::info("cluster: {} {}/{} {}: {}", event.kind, event.fleet, event.vm, event.host,
                   event.detail);
    return true;
  };
  PlacementsWritten result;
  for (std::size_t first = 0; first < decisions.size(); first += kDecisionsPerTxn) {
    const auto batch =
        decisions.subspan(first, std::min(kDecisionsPerTxn, decisions.size() - first));
    auto written = write(batch);
    if (!written)
      return std::unexpected(written.error());
    if (*written) {
      result.placed += batch.size();
      continue;
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      auto one = batch.size() == 1 ? written : write(batch.subspan(i, 1));
      if (!one)
        return std::unexpected(one.error());
      ++(*one ? result.placed : result.refused);
    }
  }
  return result;
}

Expected<CoordinatorRound> Coordinator::round(EtcdClient& etcd, std::int64_t lease) {
  CoordinatorRound result;
  auto mine = campaign(etcd, lease);
  if (!mine)
    return std::unexpected(mine.error());
  result.coordinator = *mine;
  if (!*mine)
    return result;

  auto fleets = etcd.get_prefix(kFleetsPrefix);
  if (!fleets)
    return std::unexpected(fleets.error());
  auto hosts = etcd.get_prefix(kHostsPrefix);
  if (!hosts)
    return std::unexpected(hosts.error());
  auto placements = etcd.get_prefix(kPlacementsPrefix);
  if (!placements)
    return std::unexpected(placements.error());
  auto known = etcd.get_prefix(kKnownPrefix);
  if (!known)
    return std::unexpected(known.error());
  auto statuses = etcd.get_prefix(kStatusPrefix);
  if (!statuses)
    return std::unexpected(statuses.error());

  std::vector<Want> wants;
  for (const auto& kv : fleets->kvs) {
    auto fleet = from_text(kv.value, cluster_fleet_from);
    if (!fleet) {
      if (said_.insert("bad " + kv.key).second)
        spdlog::error("cluster: {}: {}: left alone", kv.key, fleet.error().message);
      continue;
    }
    wants.insert(wants.end(), fleet->wants.begin(), fleet->wants.end());
  }
  std::vector<LiveHost> live;
  for (const auto& kv : hosts->kvs) {
    auto parsed = nlohmann::json::parse(kv.value, nullptr, false);
    if (parsed.is_discarded())
      continue;
    if (auto record = host_record_from(parsed))
      live.push_back({record->name, record->vmms, record->cpus});
  }
  // Hosts that were part of the cluster and no longer are: said once each.
  for (const auto& kv : known->kvs) {
    const std::string name = kv.key.substr(std::string(kKnownPrefix).size());
    const bool alive = std::any_of(live.begin(), live.end(),
                                   [&](const LiveHost& host) { return host.name == name; });
    if (alive) {
      lost_.erase(name);
    } else if (lost_.insert(name).second) {
      event(etcd, {0, "host-lost", "", "", name, "its lease expired or was revoked"});
    }
  }
  std::map<VmKey, std::string> current;
  std::map<VmKey, std::int64_t> revision;
  for (const auto& kv : placements->kvs) {
    if (auto vm = vm_of_key(kv.key, kPlacementsPrefix)) {
      current[*vm] = kv.value;
      revision[*vm] = kv.mod_revision;
    }
  }

  // Up where it is placed: what `after` waits for.
  std::set<VmKey> up;
  for (const auto& kv : statuses->kvs) {
    auto vm = vm_of_key(kv.key, kStatusPrefix);
    auto status = from_text(kv.value, vm_status_from);
    if (!vm || !status)
      continue;
    auto placed = current.find(*vm);
    if (status->up && placed != current.end() && placed->second == status->host)
      up.insert(*vm);
  }
  const Plan plan = plan_placements(wants, live, current, up);
  auto written = write_placements(etcd, host_, plan.place, revision, events_);
  if (!written)
    return std::unexpected(written.error());
  result.placed = written->placed;
  result.refused = written->refused;
  const Compare still_me{kCoordinatorKey, Compare::Target::value, host_, 0};
  for (const auto& vm : plan.drop) {
    const std::string key = placement_key(vm);
    auto removed =
        etcd.commit(Txn{{still_me, {key, Compare::Target::mod_revision, {}, revision[vm]}},
                        {{Operation::Kind::remove, key, {}, 0}},
                        {}});
    if (!removed)
      return std::unexpected(removed.error());
    result.dropped += *removed ? 1 : 0;
  }
  for (const auto& stuck : plan.stuck) {
    if (said_.insert(stuck.vm.first + "/" + stuck.vm.second + ": " + stuck.why).second)
      event(etcd, {0, stuck.why.starts_with("waits") ? "waiting" : "unplaceable", stuck.vm.first,
                   stuck.vm.second, "", stuck.why});
  }
  return result;
}

}  // namespace crosvisor::cluster
