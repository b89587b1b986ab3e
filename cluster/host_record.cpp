#include "cluster/host_record.hpp"

#include <map>

#include "core/host_name.hpp"

namespace crosvisor::cluster {

using json = nlohmann::json;

json to_json(const HostRecord& r) {
  return {{"name", r.name},
          {"cpus", r.cpus},
          {"memory_mib", r.memory_mib},
          {"vmms", r.vmms},
          {"version", r.version},
          {"lease", std::to_string(r.lease)},
          {"joined_at_ms", r.joined_at_ms}};
}

Expected<HostRecord> host_record_from(const json& j) {
  try {
    HostRecord r;
    r.name = j.at("name").get<std::string>();
    r.cpus = j.at("cpus").get<std::uint32_t>();
    r.memory_mib = j.at("memory_mib").get<std::uint64_t>();
    r.vmms = j.at("vmms").get<std::vector<std::string>>();
    r.version = j.at("version").get<std::string>();
    r.lease = std::stoll(j.at("lease").get<std::string>());
    r.joined_at_ms = j.at("joined_at_ms").get<std::int64_t>();
    return r;
  } catch (const std::exception& e) {
    return make_error(ErrorKind::invalid_config, std::string("host record: ") + e.what());
  }
}

Expected<void> check_host_name(const std::string& name) {
  if (!is_valid_host_name(name))
    return make_error(ErrorKind::invalid_config,
                      "host name '" + name +
                          "' must be 1 to 63 of a-z, 0-9 and '-', not starting or ending with '-'");
  return {};
}

std::vector<HostStatus> host_statuses(const std::vector<std::string>& known,
                                      const std::vector<std::string>& alive) {
  std::map<std::string, HostStatus> by_name;
  const auto parse = [](const std::string& text) -> std::optional<HostRecord> {
    auto parsed = json::parse(text, nullptr, false);
    if (parsed.is_discarded())
      return std::nullopt;
    auto record = host_record_from(parsed);
    return record ? std::optional<HostRecord>(std::move(*record)) : std::nullopt;
  };
  for (const auto& text : known) {
    if (auto record = parse(text)) {
      const std::string name = record->name;  // the record moves first
      by_name[name] = HostStatus{std::move(*record), false, -1};
    }
  }
  for (const auto& text : alive) {
    if (auto record = parse(text)) {
      const std::string name = record->name;
      by_name[name] = HostStatus{std::move(*record), true, -1};
    }
  }
  std::vector<HostStatus> statuses;
  for (auto& [name, status] : by_name)
    statuses.push_back(std::move(status));
  return statuses;
}

}  // namespace crosvisor::cluster
