// A fleet placed on a cluster (docs/cluster.md), as etcd keeps it, and the other keys of the
// cluster's state:
//   /crosvisor/fleets/<fleet>              ClusterFleet (JSON)
//   /crosvisor/coordinator                 the coordinator's host name, bound to its lease
//   /crosvisor/placements/<fleet>/<vm>     the host that runs it
//   /crosvisor/status/<fleet>/<vm>         VmStatus, bound to the lease of the host that writes it
//   /crosvisor/events/<ms>-<host>-<n>      ClusterEvent
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cluster/placement.hpp"
#include "crosvisor/error.hpp"

namespace crosvisor::cluster {

inline constexpr const char* kFleetsPrefix = "/crosvisor/fleets/";
inline constexpr const char* kCoordinatorKey = "/crosvisor/coordinator";
inline constexpr const char* kPlacementsPrefix = "/crosvisor/placements/";
inline constexpr const char* kStatusPrefix = "/crosvisor/status/";
inline constexpr const char* kEventsPrefix = "/crosvisor/events/";

struct ClusterFleet {
  std::string name;
  std::uint32_t owner_uid = 0;
  std::uint32_t owner_gid = 0;
  std::string submitted_on;  // the host it was brought up from
  std::int64_t submitted_at_ms = 0;
  std::vector<Want> wants;  // where each VM may run, for the coordinator
  // The fleet as it came on the control socket, each file by path: each host reopens the files
  // with the owner's rights, as a restarting daemon does (docs/state.md).
  nlohmann::json fleet;
};
nlohmann::json to_json(const ClusterFleet& fleet);
Expected<ClusterFleet> cluster_fleet_from(const nlohmann::json& json);

// What a host says of a VM it runs.
struct VmStatus {
  std::string host;
  std::string state;  // crosvisor's VM states: starting, running, ready, stopping, dead
  bool up = false;    // ready, or running without a ready condition: what `after` waits for
  std::optional<std::int64_t> pid;
  std::int64_t since_ms = 0;
  std::string detail;
};
nlohmann::json to_json(const VmStatus& status);
Expected<VmStatus> vm_status_from(const nlohmann::json& json);

struct ClusterEvent {
  std::int64_t at_ms = 0;
  std::string kind;  // placed, moved, waiting, unplaceable, host-lost, fenced
  std::string fleet;
  std::string vm;
  std::string host;
  std::string detail;
};
nlohmann::json to_json(const ClusterEvent& event);
Expected<ClusterEvent> cluster_event_from(const nlohmann::json& json);

// A record as etcd holds it (JSON text), parsed by `from` (cluster_fleet_from,
// vm_status_from, ...); an error for text that is not JSON.
template <class Parse>
auto from_text(const std::string& text, Parse from) -> decltype(from(nlohmann::json())) {
  auto parsed = nlohmann::json::parse(text, nullptr, false);
  if (parsed.is_discarded())
    return make_error(ErrorKind::invalid_config, "not JSON");
  return from(parsed);
}

std::string placement_key(const VmKey& vm);
std::string status_key(const VmKey& vm);
// The fleet and VM a placement or status key names; nothing for another key.
std::optional<VmKey> vm_of_key(const std::string& key, const std::string& prefix);

}  // namespace crosvisor::cluster
