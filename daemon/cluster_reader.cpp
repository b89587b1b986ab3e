#include "daemon/cluster_reader.hpp"

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <memory>

#include "cluster/coordinator.hpp"
#include "crosvisor/error_bridge.hpp"

namespace crosvisor::daemon {
namespace {

Expected<std::vector<cluster::HostStatus>> read_hosts(cluster::EtcdClient& client) {
  auto known = client.get_prefix(cluster::kKnownPrefix);
  if (!known)
    return std::unexpected(known.error());
  auto alive = client.get_prefix(cluster::kHostsPrefix);
  if (!alive)
    return std::unexpected(alive.error());
  std::vector<std::string> known_values, alive_values;
  for (const auto& kv : known->kvs)
    known_values.push_back(kv.value);
  for (const auto& kv : alive->kvs)
    alive_values.push_back(kv.value);
  auto statuses = cluster::host_statuses(known_values, alive_values);
  for (auto& status : statuses) {
    if (!status.up)
      continue;
    auto ttl = client.time_to_live(status.record.lease);
    if (ttl)
      status.ttl_s = *ttl;
    else if (ttl.error().kind == ErrorKind::not_found)
      status.up = false;  // expired between the two reads
  }
  return statuses;
}

Expected<bool> bring_up(cluster::EtcdClient& client, const cluster::ClusterFleet& fleet) {
  const std::string key = cluster::kFleetsPrefix + fleet.name;
  auto created = client.commit({{{key, cluster::Compare::Target::create_revision, {}, 0}},
                                {{cluster::Operation::Kind::put, key, to_json(fleet).dump(), 0}},
                                {}});
  if (!created)
    return std::unexpected(created.error());
  if (!*created)
    return make_error(ErrorKind::conflict,
                      "the cluster has a fleet named '" + fleet.name + "' already");
  return true;
}

Expected<cluster::ClusterFleet> fleet_named(cluster::EtcdClient& client, const std::string& name,
                                            std::int64_t* revision = nullptr) {
  auto found = client.get(cluster::kFleetsPrefix + name);
  if (!found)
    return std::unexpected(found.error());
  if (found->kvs.empty())
    return make_error(ErrorKind::not_found, "the cluster has no fleet named '" + name + "'");
  if (revision)
    *revision = found->kvs[0].mod_revision;
  return cluster::from_text(found->kvs[0].value, cluster::cluster_fleet_from);
}

Expected<std::vector<ClusterVmView>> status_of(cluster::EtcdClient& client,
                                               const std::string& name) {
  auto fleet = fleet_named(client, name);
  if (!fleet)
    return std::unexpected(fleet.error());
  auto placements = client.get_prefix(cluster::kPlacementsPrefix + name + "/");
  if (!placements)
    return std::unexpected(placements.error());
  auto statuses = client.get_prefix(cluster::kStatusPrefix + name + "/");
  if (!statuses)
    return std::unexpected(statuses.error());
  std::vector<ClusterVmView> views;
  for (const auto& want : fleet->wants) {
    ClusterVmView view{want.vm.second, {}, std::nullopt};
    for (const auto& kv : placements->kvs) {
      if (cluster::vm_of_key(kv.key, cluster::kPlacementsPrefix) == want.vm)
        view.host = kv.value;
    }
    for (const auto& kv : statuses->kvs) {
      if (cluster::vm_of_key(kv.key, cluster::kStatusPrefix) != want.vm)
        continue;
      if (auto status = cluster::from_text(kv.value, cluster::vm_status_from))
        view.status = std::move(*status);
    }
    views.push_back(std::move(view));
  }
  return views;
}

Expected<bool> bring_down(cluster::EtcdClient& client, const std::string& name,
                          std::uint32_t caller) {
  std::int64_t revision = 0;
  auto fleet = fleet_named(client, name, &revision);
  if (!fleet)
    return std::unexpected(fleet.error());
  if (caller != 0 && caller != fleet->owner_uid)
    return make_error(ErrorKind::permission,
                      "fleet " + name + " is uid " + std::to_string(fleet->owner_uid) + "'s");
  const std::string key = cluster::kFleetsPrefix + name;
  auto removed = client.commit({{{key, cluster::Compare::Target::mod_revision, {}, revision}},
                                {{cluster::Operation::Kind::remove, key, {}, 0}},
                                {}});
  if (!removed)
    return std::unexpected(removed.error());
  if (!*removed)
    return make_error(ErrorKind::conflict, "fleet " + name + " changed meanwhile: try again");
  return true;
}

}  // namespace

ClusterReaderActor spawn_cluster_reader(caf::actor_system& system, cluster::EtcdClient client) {
  auto owned = std::make_shared<cluster::EtcdClient>(std::move(client));
  // The client comes as an argument, not a capture: CAF 0.17 binds an argument-less function
  // actor's (empty) argument tuple through a null pointer, which UBSan reports.
  return system.spawn<caf::detached>(
      [](ClusterReaderActor::pointer,
         std::shared_ptr<cluster::EtcdClient> shared) -> ClusterReaderActor::behavior_type {
        return {
            [shared](hosts_atom) -> caf::result<std::vector<cluster::HostStatus>> {
              auto hosts = read_hosts(*shared);
              if (!hosts)
                return to_caf_error(hosts.error());
              return std::move(*hosts);
            },
            [shared](cluster_up_atom, const cluster::ClusterFleet& fleet) -> caf::result<bool> {
              auto up = bring_up(*shared, fleet);
              if (!up)
                return to_caf_error(up.error());
              return true;
            },
            [shared](cluster_status_atom,
                     const std::string& name) -> caf::result<std::vector<ClusterVmView>> {
              auto views = status_of(*shared, name);
              if (!views)
                return to_caf_error(views.error());
              return std::move(*views);
            },
            [shared](cluster_events_atom,
                     std::int64_t since) -> caf::result<std::vector<cluster::ClusterEvent>> {
              auto events = cluster::read_events(*shared, since);
              if (!events)
                return to_caf_error(events.error());
              return std::move(*events);
            },
            [shared](cluster_down_atom, const std::string& name,
                     std::uint32_t caller) -> caf::result<bool> {
              auto down = bring_down(*shared, name, caller);
              if (!down)
                return to_caf_error(down.error());
              return true;
            },
        };
      },
      std::move(owned));
}

}  // namespace crosvisor::daemon
