#include "cluster/cluster_fleet.hpp"

namespace crosvisor::cluster {

using json = nlohmann::json;

json to_json(const ClusterFleet& f) {
  json wants = json::array();
  for (const auto& want : f.wants)
    wants.push_back({{"name", want.vm.second},
                     {"group", want.group},
                     {"hosts", want.hosts},
                     {"spread", want.spread},
                     {"wait_on_loss", want.wait_on_loss},
                     {"vmm", want.vmm},
                     {"after", want.after}});
  return {{"name", f.name},
          {"owner_uid", f.owner_uid},
          {"owner_gid", f.owner_gid},
          {"submitted_on", f.submitted_on},
          {"submitted_at_ms", f.submitted_at_ms},
          {"vms", wants},
          {"fleet", f.fleet}};
}

Expected<ClusterFleet> cluster_fleet_from(const json& j) {
  try {
    ClusterFleet f;
    f.name = j.at("name").get<std::string>();
    f.owner_uid = j.at("owner_uid").get<std::uint32_t>();
    f.owner_gid = j.at("owner_gid").get<std::uint32_t>();
    f.submitted_on = j.at("submitted_on").get<std::string>();
    f.submitted_at_ms = j.at("submitted_at_ms").get<std::int64_t>();
    for (const auto& entry : j.at("vms")) {
      Want want;
      want.vm = {f.name, entry.at("name").get<std::string>()};
      want.group = entry.at("group").get<std::string>();
      want.hosts = entry.at("hosts").get<std::vector<std::string>>();
      want.spread = entry.at("spread").get<bool>();
      want.wait_on_loss = entry.at("wait_on_loss").get<bool>();
      want.vmm = entry.at("vmm").get<std::string>();
      want.after = entry.value("after", std::vector<std::string>());
      f.wants.push_back(std::move(want));
    }
    f.fleet = j.at("fleet");
    return f;
  } catch (const std::exception& e) {
    return make_error(ErrorKind::invalid_config, std::string("cluster fleet: ") + e.what());
  }
}

json to_json(const VmStatus& s) {
  json out = {{"host", s.host},
              {"state", s.state},
              {"up", s.up},
              {"since_ms", s.since_ms},
              {"detail", s.detail}};
  if (s.pid)
    out["pid"] = *s.pid;
  return out;
}

Expected<VmStatus> vm_status_from(const json& j) {
  try {
    VmStatus s;
    s.host = j.at("host").get<std::string>();
    s.state = j.at("state").get<std::string>();
    s.since_ms = j.at("since_ms").get<std::int64_t>();
    s.detail = j.at("detail").get<std::string>();
    s.up = j.value("up", false);
    if (j.contains("pid"))
      s.pid = j.at("pid").get<std::int64_t>();
    return s;
  } catch (const std::exception& e) {
    return make_error(ErrorKind::invalid_config, std::string("VM status: ") + e.what());
  }
}

json to_json(const ClusterEvent& e) {
  return {{"at_ms", e.at_ms}, {"kind", e.kind}, {"fleet", e.fleet},
          {"vm", e.vm},       {"host", e.host}, {"detail", e.detail}};
}

Expected<ClusterEvent> cluster_event_from(const json& j) {
  try {
    return ClusterEvent{j.at("at_ms").get<std::int64_t>(), j.at("kind").get<std::string>(),
                        j.at("fleet").get<std::string>(),  j.at("vm").get<std::string>(),
                        j.at("host").get<std::string>(),   j.at("detail").get<std::string>()};
  } catch (const std::exception& e) {
    return make_error(ErrorKind::invalid_config, std::string("cluster event: ") + e.what());
  }
}

std::string placement_key(const VmKey& vm) {
  return kPlacementsPrefix + vm.first + "/" + vm.second;
}

std::string status_key(const VmKey& vm) {
  return kStatusPrefix + vm.first + "/" + vm.second;
}

std::optional<VmKey> vm_of_key(const std::string& key, const std::string& prefix) {
  if (!key.starts_with(prefix))
    return std::nullopt;
  const std::string rest = key.substr(prefix.size());
  const auto slash = rest.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == rest.size())
    return std::nullopt;
  return VmKey{rest.substr(0, slash), rest.substr(slash + 1)};
}

}  // namespace crosvisor::cluster
