#include "protocol/fleet_json.hpp"

#include <set>

#include "config/fleet_networks.hpp"
#include "core/host_name.hpp"
#include "protocol/spec_json.hpp"

namespace crosvisor::protocol {
namespace {

using json = nlohmann::json;

Error bad(const std::string& what) {
  return Error{ErrorKind::protocol, "fleet: " + what};
}

}  // namespace

Expected<FleetMessage> fleet_to_message(const config::FleetSpec& fleet) {
  FdCollector files(/*share_read_only=*/true);
  json vms = json::array();
  for (const auto& vm : fleet.vms) {
    auto description = spec_json(vm.spec, files);
    if (!description)
      return std::unexpected(description.error());
    vms.push_back(
        {{"vm", *description},
         {"group", vm.group},
         {"after", vm.after},
         {"restart",
          {{"policy", std::string(config::to_string(vm.restart.policy))},
           {"max_restarts", vm.restart.max_restarts},
           {"window_ms", vm.restart.window.count()},
           {"backoff_ms", vm.restart.backoff.count()}}},
         {"placement",
          {{"hosts", vm.placement.hosts},
           {"spread", vm.placement.spread},
           {"on_host_loss", std::string(config::to_string(vm.placement.on_host_loss))}}}});
  }
  json networks = json::array();
  for (const auto& network : fleet.networks) {
    json entry = {{"name", network.name}, {"dns", network.dns}};
    if (network.subnet)
      entry["subnet"] = to_string(*network.subnet);
    networks.push_back(std::move(entry));
  }
  json message = {{"name", fleet.name},
                  {"concurrency", fleet.concurrency},
                  {"networks", networks},
                  {"vms", vms}};
  return FleetMessage{std::move(message), std::move(files.fds)};
}

Expected<config::FleetSpec> fleet_from_message(const json& fleet, std::vector<UniqueFd> fds) {
  if (!fleet.is_object())
    return std::unexpected(bad("must be an object"));
  for (const auto& [key, value] : fleet.items()) {
    if (key != "name" && key != "concurrency" && key != "vms" && key != "networks")
      return std::unexpected(bad("unknown field '" + key + "'"));
  }
  config::FleetSpec spec;
  if (!fleet.contains("name") || !fleet["name"].is_string() ||
      !is_valid_vm_name(fleet["name"].get<std::string>()))
    return std::unexpected(bad("'name' must be a fleet name"));
  spec.name = fleet["name"].get<std::string>();
  if (!fleet.contains("concurrency") || !fleet["concurrency"].is_number_unsigned() ||
      fleet["concurrency"].get<std::uint64_t>() < 1 ||
      fleet["concurrency"].get<std::uint64_t>() > 10'000)
    return std::unexpected(bad("'concurrency' must be 1 to 10000"));
  spec.concurrency = fleet["concurrency"].get<std::size_t>();
  if (fleet.contains("networks")) {
    const json& networks = fleet["networks"];
    if (!networks.is_array() || networks.size() > 64)
      return std::unexpected(bad("'networks' must be an array of at most 64 networks"));
    for (std::size_t i = 0; i < networks.size(); ++i) {
      const json& entry = networks[i];
      const std::string at = "networks[" + std::to_string(i) + "]";
      NetworkSpec network;
      if (!entry.is_object() || !entry.contains("name") || !entry["name"].is_string() ||
          !is_valid_vm_name(entry["name"].get<std::string>()))
        return std::unexpected(bad(at + " needs a network name"));
      for (const auto& [key, value] : entry.items()) {
        if (key != "name" && key != "subnet" && key != "dns")
          return std::unexpected(bad(at + ": unknown field '" + key + "'"));
      }
      network.name = entry["name"].get<std::string>();
      if (entry.contains("subnet")) {
        if (!entry["subnet"].is_string() ||
            !(network.subnet = parse_subnet(entry["subnet"].get<std::string>())))
          return std::unexpected(bad(at + ".subnet must be an IPv4 subnet"));
      }
      if (entry.contains("dns")) {
        if (!entry["dns"].is_boolean())
          return std::unexpected(bad(at + ".dns must be true or false"));
        network.dns = entry["dns"].get<bool>();
      }
      spec.networks.push_back(std::move(network));
    }
  }
  if (!fleet.contains("vms") || !fleet["vms"].is_array() || fleet["vms"].empty() ||
      fleet["vms"].size() > 10'000)
    return std::unexpected(bad("'vms' must be an array of 1 to 10000 VMs"));
  std::vector<const json*> descriptions;
  for (std::size_t i = 0; i < fleet["vms"].size(); ++i) {
    const json& entry = fleet["vms"][i];
    const std::string at = "vms[" + std::to_string(i) + "]";
    if (!entry.is_object() || !entry.contains("vm"))
      return std::unexpected(bad(at + " needs 'vm'"));
    for (const auto& [key, value] : entry.items()) {
      if (key != "vm" && key != "after" && key != "restart" && key != "group" && key != "placement")
        return std::unexpected(bad(at + ": unknown field '" + key + "'"));
    }
    descriptions.push_back(&entry["vm"]);
  }
  auto specs = specs_from_message(descriptions, std::move(fds));
  if (!specs)
    return std::unexpected(bad(specs.error().message));
  std::set<std::string> names;
  for (const auto& vm : *specs) {
    if (!names.insert(vm.name).second)
      return std::unexpected(bad("the name '" + vm.name + "' is used twice"));
  }
  for (std::size_t i = 0; i < specs->size(); ++i) {
    const json& entry = fleet["vms"][i];
    const std::string at = "vms[" + std::to_string(i) + "]";
    config::FleetVm vm;
    vm.spec = std::move((*specs)[i]);
    if (entry.contains("group") && !entry["group"].is_string())
      return std::unexpected(bad(at + ".group must be a string"));
    vm.group = entry.value("group", vm.spec.name);
    if (entry.contains("after")) {
      if (!entry["after"].is_array())
        return std::unexpected(bad(at + ".after must be an array of names"));
      for (const auto& name : entry["after"]) {
        if (!name.is_string() || !names.count(name.get<std::string>()))
          return std::unexpected(bad(at + ".after: " + name.dump() + " names no VM"));
        vm.after.push_back(name.get<std::string>());
      }
    }
    if (entry.contains("restart")) {
      const json& restart = entry["restart"];
      try {
        auto policy = config::restart_policy_named(restart.at("policy").get<std::string>());
        if (!policy)
          return std::unexpected(bad(at + ".restart.policy is not a policy"));
        vm.restart.policy = *policy;
        vm.restart.max_restarts = restart.at("max_restarts").get<std::uint32_t>();
        vm.restart.window = std::chrono::milliseconds(restart.at("window_ms").get<std::uint32_t>());
        vm.restart.backoff =
            std::chrono::milliseconds(restart.at("backoff_ms").get<std::uint32_t>());
      } catch (const json::exception&) {
        return std::unexpected(bad(at + ".restart needs policy, max_restarts, window_ms and "
                                        "backoff_ms"));
      }
    }
    if (entry.contains("placement")) {
      const json& placement = entry["placement"];
      try {
        for (const auto& host : placement.at("hosts")) {
          if (!is_valid_host_name(host.get<std::string>()))
            return std::unexpected(
                bad(at + ".placement.hosts: " + host.dump() + " is not a host name"));
          vm.placement.hosts.push_back(host.get<std::string>());
        }
        vm.placement.spread = placement.at("spread").get<bool>();
        auto loss = config::on_host_loss_named(placement.at("on_host_loss").get<std::string>());
        if (!loss)
          return std::unexpected(bad(at + ".placement.on_host_loss is not a policy"));
        vm.placement.on_host_loss = *loss;
      } catch (const json::exception&) {
        return std::unexpected(bad(at + ".placement needs hosts, spread and on_host_loss"));
      }
      // The rule the validator applies, again: a client may not have checked it.
      if (config::writes_local_data(vm.spec))
        vm.placement.on_host_loss = config::OnHostLoss::wait;
    }
    spec.vms.push_back(std::move(vm));
  }
  // The rules a fleet file's networks follow, again: a client may not have checked them.
  if (auto problems = config::network_problems(spec); !problems.empty())
    return std::unexpected(bad(problems.front().message));
  return spec;
}

}  // namespace crosvisor::protocol
