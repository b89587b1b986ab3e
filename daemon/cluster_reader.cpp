#include "daemon/cluster_reader.hpp"

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <memory>

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

}  // namespace

ClusterReaderActor spawn_cluster_reader(caf::actor_system& system, cluster::EtcdClient client) {
  auto shared = std::make_shared<cluster::EtcdClient>(std::move(client));
  return system.spawn<caf::detached>(
      [shared](ClusterReaderActor::pointer) -> ClusterReaderActor::behavior_type {
        return {
            [shared](hosts_atom) -> caf::result<std::vector<cluster::HostStatus>> {
              auto hosts = read_hosts(*shared);
              if (!hosts)
                return to_caf_error(hosts.error());
              return std::move(*hosts);
            },
        };
      });
}

}  // namespace crosvisor::daemon
