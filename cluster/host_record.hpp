// What a host of a cluster says of itself in etcd (docs/cluster.md):
//   /crosvisor/hosts/<name>   bound to its lease: there while the host is alive
//   /crosvisor/known/<name>   the same, unbound: every host that ever joined, so that one whose
//                             lease expired is listed as lost rather than forgotten
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "crosvisor/error.hpp"

namespace crosvisor::cluster {

inline constexpr const char* kHostsPrefix = "/crosvisor/hosts/";
inline constexpr const char* kKnownPrefix = "/crosvisor/known/";

struct HostRecord {
  std::string name;
  std::uint32_t cpus = 0;
  std::uint64_t memory_mib = 0;
  std::vector<std::string> vmms;  // what it can run: "qemu", "crosvm"
  std::string version;
  std::int64_t lease = 0;
  std::int64_t joined_at_ms = 0;
};

nlohmann::json to_json(const HostRecord& record);
Expected<HostRecord> host_record_from(const nlohmann::json& json);

// A host name: 1 to 63 of [a-z0-9-], not starting or ending with '-' (a DNS label: it is also
// an etcd key's last part).
Expected<void> check_host_name(const std::string& name);

// How a host looks from the cluster: up while its leased key is there, lost once only its
// known record is.
struct HostStatus {
  HostRecord record;
  bool up = false;
  std::int64_t ttl_s = -1;  // seconds left on its lease, when up and asked
};
// Every known host, by name, from the two prefixes' values (records that do not parse are
// skipped: another version's, or damaged).
std::vector<HostStatus> host_statuses(const std::vector<std::string>& known,
                                      const std::vector<std::string>& alive);

}  // namespace crosvisor::cluster
