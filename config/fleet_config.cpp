#include "config/fleet_config.hpp"

#include <algorithm>
#include <array>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "config/fleet_networks.hpp"
#include "config/toml_reader.hpp"
#include "config/vm_config.hpp"
#include "core/host_name.hpp"

namespace crosvisor::config {
namespace {

constexpr std::string_view kIndex = "{index}";
constexpr std::int64_t kMaxCount = 10'000;
// VMs in one fleet, replicas included: a few lines of `count` must not expand into millions.
constexpr std::size_t kMaxFleetVms = 10'000;

// The keys a [[vm]] has on top of a VM file's.
struct GroupKeys {
  std::int64_t count = 1;
  bool replicated = false;
  std::vector<std::pair<std::string, toml::source_region>> after;
  RestartSpec restart;
  PlacementSpec placement;
  bool loss_policy_written = false;  // on_host_loss given, not the default
};

GroupKeys read_group_keys(TableReader& vm) {
  GroupKeys keys;
  if (auto count = vm.integer("count", 1, kMaxCount)) {
    keys.count = *count;
    keys.replicated = true;
  }
  if (const toml::node* after = vm.raw().get("after")) {
    if (const toml::array* names = after->as_array()) {
      for (std::size_t i = 0; i < names->size(); ++i) {
        const toml::node& name = *names->get(i);
        if (auto text = name.value<std::string>()) {
          keys.after.emplace_back(*text, name.source());
        } else {
          vm.problems().add(name.source(), vm.dotted("after[" + std::to_string(i) + "]"),
                            "must be a VM name");
        }
      }
    } else {
      vm.problems().add(after->source(), vm.dotted("after"), "must be an array of VM names");
    }
  }
  if (auto policy = vm.choice("restart", restart_policy_names()))
    keys.restart.policy = *restart_policy_named(*policy);
  if (auto max = vm.integer("max_restarts", 0, 1000))
    keys.restart.max_restarts = static_cast<std::uint32_t>(*max);
  if (auto window = vm.seconds("window_s", 0.1, 86'400))
    keys.restart.window = std::chrono::milliseconds(static_cast<std::int64_t>(*window * 1000));
  if (auto backoff = vm.seconds("backoff_s", 0, 3'600))
    keys.restart.backoff = std::chrono::milliseconds(static_cast<std::int64_t>(*backoff * 1000));
  if (const toml::node* hosts = vm.raw().get("hosts")) {
    const toml::array* names = hosts->as_array();
    if (names == nullptr || names->empty())
      vm.problems().add(hosts->source(), vm.dotted("hosts"), "must be an array of host names");
    for (std::size_t i = 0; names != nullptr && i < names->size(); ++i) {
      const toml::node& name = *names->get(i);
      auto text = name.value<std::string>();
      if (!text || !is_valid_host_name(*text))
        vm.problems().add(name.source(), vm.dotted("hosts[" + std::to_string(i) + "]"),
                          "must be a host name (1 to 63 of a-z, 0-9 and '-')");
      else
        keys.placement.hosts.push_back(*text);
    }
  }
  if (auto spread = vm.boolean("spread"))
    keys.placement.spread = *spread;
  if (auto loss = vm.choice("on_host_loss", {"reschedule", "wait"})) {
    keys.placement.on_host_loss = *on_host_loss_named(*loss);
    keys.loss_policy_written = true;
  }
  return keys;
}

std::string expand(const std::string& name, std::int64_t index) {
  std::string expanded = name;
  const auto at = expanded.find(kIndex);
  expanded.replace(at, kIndex.size(), std::to_string(index));
  return expanded;
}

toml::source_region where_of(const toml::table& table, std::string_view key) {
  if (const toml::node* node = table.get(key))
    return node->source();
  return table.source();
}

// The writable images a VM uses, as canonical paths.
std::vector<std::filesystem::path> writable_images(const VmSpec& spec) {
  std::vector<std::filesystem::path> images;
  std::error_code ec;
  for (const auto& disk : spec.disks) {
    if (const auto* raw = std::get_if<RawDisk>(&disk)) {
      if (raw->writable)
        images.push_back(std::filesystem::weakly_canonical(raw->path, ec));
      continue;
    }
    for (const auto& partition : std::get<CompositeDisk>(disk).partitions) {
      if (partition.writable)
        images.push_back(std::filesystem::weakly_canonical(partition.path, ec));
    }
  }
  return images;
}

// Files the VM needs, checked to exist now rather than at launch.
void check_files(const VmSpec& spec, const toml::table& table, const toml::table* defaults,
                 const std::string& prefix, ProblemList& problems) {
  const auto check = [&](const std::filesystem::path& path, std::string_view key) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(path, ec) || std::filesystem::is_block_file(path, ec))
      return;
    // The key's place: the VM's own table, else [defaults].
    const bool inherited = !table.contains(key) && defaults && defaults->contains(key);
    problems.add(where_of(inherited ? *defaults : table, key),
                 (inherited ? std::string("defaults.") : prefix) + std::string(key),
                 path.string() + ": no such file");
  };
  if (!spec.kernel.empty())
    check(spec.kernel, "kernel");
  if (spec.initrd)
    check(*spec.initrd, "initrd");
  if (spec.bootloader)
    check(*spec.bootloader, "bootloader");
  if (spec.nvram_template)
    check(*spec.nvram_template, "nvram_template");
  for (const auto& disk : spec.disks) {
    if (const auto* raw = std::get_if<RawDisk>(&disk)) {
      check(raw->path, "disks");
      continue;
    }
    for (const auto& partition : std::get<CompositeDisk>(disk).partitions)
      check(partition.path, "disks");
  }
}

// Problems found in a [[vm]] table merged with [defaults] (the merge is a copy, and copied values
// keep no place in the file): each is put back where its key is written, and one inherited from
// [defaults] is reported once, as a key of [defaults], not once per VM.
void place_problems(const ProblemList& found, const std::string& prefix, const toml::table& vm,
                    const toml::table* defaults, ProblemList& problems) {
  for (auto problem : found.all()) {
    std::string rest = problem.key;
    if (rest.rfind(prefix, 0) == 0)
      rest.erase(0, prefix.size());
    if (!rest.empty() && rest.front() == '.')
      rest.erase(0, 1);
    const std::string top = rest.substr(0, rest.find_first_of(".["));
    const toml::table* origin = nullptr;
    if (!top.empty() && vm.contains(top))
      origin = &vm;
    else if (!top.empty() && defaults && defaults->contains(top))
      origin = defaults;
    if (origin != nullptr && origin == defaults)
      problem.key = "defaults." + rest;
    if (problem.line == 0) {
      const toml::node* node = origin ? node_at(*origin, rest) : nullptr;
      const auto& where = node ? node->source() : (origin ? origin->source() : vm.source());
      problem.line = where.begin.line;
      problem.column = where.begin.column;
    }
    problems.add_unique(std::move(problem));
  }
}

}  // namespace

std::size_t default_concurrency() {
  return std::max<std::size_t>(2, 2 * std::thread::hardware_concurrency());
}

// One table for both directions, as core/names.cpp has for the public enums.
constexpr std::array<std::pair<RestartPolicy, std::string_view>, 3> kRestartPolicies{
    {{RestartPolicy::never, "never"},
     {RestartPolicy::on_failure, "on-failure"},
     {RestartPolicy::always, "always"}}};

std::string_view to_string(RestartPolicy policy) {
  for (const auto& [entry, name] : kRestartPolicies) {
    if (entry == policy)
      return name;
  }
  return "?";
}

std::optional<RestartPolicy> restart_policy_named(std::string_view name) {
  for (const auto& [entry, entry_name] : kRestartPolicies) {
    if (entry_name == name)
      return entry;
  }
  return std::nullopt;
}

std::string_view to_string(OnHostLoss policy) {
  return policy == OnHostLoss::wait ? "wait" : "reschedule";
}

std::optional<OnHostLoss> on_host_loss_named(std::string_view name) {
  if (name == "wait")
    return OnHostLoss::wait;
  if (name == "reschedule")
    return OnHostLoss::reschedule;
  return std::nullopt;
}

bool writes_local_data(const VmSpec& spec) {
  for (const auto& disk : spec.disks) {
    if (const auto* raw = std::get_if<RawDisk>(&disk); raw && raw->writable)
      return true;
    if (const auto* composite = std::get_if<CompositeDisk>(&disk)) {
      for (const auto& partition : composite->partitions) {
        if (partition.writable)
          return true;
      }
    }
  }
  return false;
}

std::vector<std::string_view> restart_policy_names() {
  std::vector<std::string_view> all;
  for (const auto& [entry, name] : kRestartPolicies)
    all.push_back(name);
  return all;
}

Expected<FleetSpec> parse_fleet(std::string_view text, const std::filesystem::path& source) {
  const std::string source_name = source.string();
  auto parsed = parse_toml(text, source);
  if (!parsed)
    return make_error(ErrorKind::invalid_config, parsed.error());
  const toml::table& root = *parsed;
  if (!looks_like_fleet_file(root) && (root.contains("kernel") || root.contains("name"))) {
    return make_error(ErrorKind::invalid_config,
                      source_name + " is a VM file, not a fleet file: use `vm run " + source_name +
                          "`, or put its keys under [[vm]]");
  }
  ProblemList problems(source_name);
  TableReader top(root, "", problems, source.parent_path());
  FleetSpec fleet;
  fleet.name = source.stem().string();
  fleet.concurrency = default_concurrency();
  std::uint32_t cid_first = 2048;
  std::uint32_t cid_last = 65535;
  if (const toml::table* settings = top.table("fleet")) {
    TableReader reader(*settings, "fleet", problems, source.parent_path());
    if (auto name = reader.string("name"))
      fleet.name = *name;
    if (auto concurrency = reader.integer("concurrency", 1, 10'000))
      fleet.concurrency = static_cast<std::size_t>(*concurrency);
    if (auto first = reader.integer("cid_first", 3, 0xfffffffe))
      cid_first = static_cast<std::uint32_t>(*first);
    if (auto last = reader.integer("cid_last", 3, 0xfffffffe))
      cid_last = static_cast<std::uint32_t>(*last);
    reader.finish();
  }
  if (!is_valid_vm_name(fleet.name)) {
    problems.add(root.source(), "fleet.name", "'" + fleet.name + "' is not a usable fleet name");
  }
  const toml::table* defaults = top.table("defaults");
  const auto groups = top.tables("vm");
  const auto network_tables = top.tables("network");
  top.finish();
  std::vector<const toml::table*> network_at;  // each network's table, in fleet.networks order
  for (const auto& [i, table] : network_tables) {
    const std::string prefix = "network[" + std::to_string(i) + "]";
    TableReader reader(*table, prefix, problems, source.parent_path());
    NetworkSpec network;
    network.name = reader.string("name", true).value_or("");
    if (auto subnet = reader.string("subnet")) {
      network.subnet = parse_subnet(*subnet);
      if (!network.subnet) {
        problems.add(table->get("subnet")->source(), prefix + ".subnet",
                     "'" + *subnet + "' is not an IPv4 subnet from /" +
                         std::to_string(kMinSubnetPrefix) + " to /" +
                         std::to_string(kMaxSubnetPrefix) + " (e.g. \"10.20.0.0/24\")");
      }
    }
    network.dns = reader.boolean("dns").value_or(false);
    reader.finish();
    if (network.name.empty())
      continue;
    if (!is_valid_vm_name(network.name)) {
      problems.add(table->get("name")->source(), prefix + ".name",
                   "'" + network.name + "' is not a network name: " + kVmNameRule);
      continue;
    }
    network_at.push_back(table);
    fleet.networks.push_back(std::move(network));
  }
  if (groups.empty())
    problems.add(root.source(), "vm", "a fleet needs at least one [[vm]]");

  struct Placed {
    std::size_t vm;            // index into fleet.vms
    const toml::table* table;  // its [[vm]] table
    std::string prefix;        // "vm[i]."
  };
  std::vector<Placed> placed;
  std::map<std::string, std::vector<std::string>> group_members;  // template -> names
  for (const auto& [i, table] : groups) {
    const std::string prefix = "vm[" + std::to_string(i) + "]";
    // [defaults], overridden by the VM's own keys (each keeps its own place in the file).
    toml::table merged = defaults ? *defaults : toml::table{};
    for (const auto& [key, value] : *table)
      merged.insert_or_assign(key, value);
    ProblemList found(source_name);
    TableReader group_reader(merged, prefix, found, source.parent_path());
    GroupKeys keys = read_group_keys(group_reader);
    const auto* name_node = merged.get("name");
    const std::string name = name_node ? name_node->value_or(std::string()) : std::string();
    const bool templated = name.find(kIndex) != std::string::npos;
    if (keys.replicated && !templated) {
      problems.add(where_of(*table, "count"), prefix + ".name",
                   "with 'count', the name must contain {index}, e.g. \"web-{index}\"");
      place_problems(found, prefix, *table, defaults, problems);
      continue;
    }
    if (!keys.replicated && templated) {
      problems.add(where_of(*table, "name"), prefix + ".name", "{index} needs 'count'");
      place_problems(found, prefix, *table, defaults, problems);
      continue;
    }
    // The VM keys, read and checked once per group (replica 0 stands for them all), without the
    // group's own keys (read above).
    toml::table first = merged;
    for (const char* key : {"count", "after", "restart", "max_restarts", "window_s", "backoff_s",
                            "hosts", "spread", "on_host_loss"})
      first.erase(key);
    if (templated)
      first.insert_or_assign("name", expand(name, 0));
    TableReader vm_reader(first, prefix, found, source.parent_path());
    auto spec = read_vm_table(vm_reader, /*best_effort=*/true);
    place_problems(found, prefix, *table, defaults, problems);
    if (!spec)
      continue;
    check_files(*spec, *table, defaults, prefix + ".", problems);
    // Its data is on its host: never run again elsewhere from an empty copy.
    if (writes_local_data(*spec)) {
      if (keys.placement.on_host_loss == OnHostLoss::reschedule && keys.loss_policy_written)
        problems.add(where_of(*table, "on_host_loss"), prefix + ".on_host_loss",
                     "a VM with a writable disk cannot be rescheduled on another host when its "
                     "host is lost (its data stays there): use \"wait\"");
      keys.placement.on_host_loss = OnHostLoss::wait;
    }
    if (fleet.vms.size() + static_cast<std::size_t>(keys.count) > kMaxFleetVms) {
      problems.add(where_of(*table, keys.replicated ? "count" : "name"),
                   prefix + (keys.replicated ? ".count" : ".name"),
                   "the fleet would have " +
                       std::to_string(fleet.vms.size() + static_cast<std::size_t>(keys.count)) +
                       " VMs with these, more than the " + std::to_string(kMaxFleetVms) +
                       " a fleet may have");
      break;  // the VMs beyond stay unexpanded: said once
    }
    for (std::int64_t index = 0; index < keys.count; ++index) {
      FleetVm vm;
      vm.spec = *spec;
      vm.spec.name = templated ? expand(name, index) : name;
      vm.restart = keys.restart;
      vm.placement = keys.placement;
      vm.group = name;
      for (const auto& [target, where] : keys.after)
        vm.after.push_back(target);  // resolved below
      group_members[name].push_back(vm.spec.name);
      fleet.vms.push_back(std::move(vm));
      placed.push_back({fleet.vms.size() - 1, table, prefix});
    }
  }

  // Names, CIDs and writable images across the fleet.
  std::map<std::string, std::size_t> by_name;
  std::map<std::uint32_t, std::string> by_cid;
  std::map<std::filesystem::path, std::string> writers;
  for (const auto& place : placed) {
    const FleetVm& vm = fleet.vms[place.vm];
    const auto& table = *place.table;
    if (!by_name.emplace(vm.spec.name, place.vm).second) {
      problems.add(where_of(table, "name"), place.prefix + ".name",
                   "the name '" + vm.spec.name + "' is used twice");
    }
    if (vm.spec.cid) {
      const std::uint32_t cid = *vm.spec.cid;
      if (cid < cid_first || cid > cid_last) {
        problems.add(where_of(table, "cid"), place.prefix + ".cid",
                     "CID " + std::to_string(cid) + " is outside the fleet's range " +
                         std::to_string(cid_first) + ".." + std::to_string(cid_last));
      } else if (auto [it, fresh] = by_cid.emplace(cid, vm.spec.name); !fresh) {
        problems.add(where_of(table, "cid"), place.prefix + ".cid",
                     "CID " + std::to_string(cid) + " is also " + it->second + "'s");
      }
    }
    for (const auto& image : writable_images(vm.spec)) {
      if (auto [it, fresh] = writers.emplace(image, vm.spec.name); !fresh) {
        problems.add(where_of(table, "disks"), place.prefix + ".disks",
                     image.string() + " is writable in " + it->second + " and in " + vm.spec.name +
                         ": two VMs must not write one image");
      }
    }
  }

  // Networks (config/fleet_networks.cpp), each problem put where its key is written.
  std::map<std::size_t, const Placed*> placed_of;
  for (const auto& place : placed)
    placed_of[place.vm] = &place;
  for (const auto& problem : network_problems(fleet)) {
    if (problem.network) {
      const toml::table& table = *network_at[*problem.network];
      problems.add(where_of(table, problem.key),
                   "network[" + std::to_string(*problem.network) + "]." + problem.key,
                   problem.message);
    } else if (const Placed* place = placed_of[*problem.vm]) {
      problems.add(where_of(*place->table, problem.key), place->prefix + "." + problem.key,
                   problem.message);
    }
  }

  // `after`: names or name templates, resolved to VM names; then no cycles.
  std::set<std::pair<std::string, std::string>> unknown_reported;  // (group, target)
  for (auto& place : placed) {
    FleetVm& vm = fleet.vms[place.vm];
    std::vector<std::string> resolved;
    for (const auto& target : vm.after) {
      if (auto group = group_members.find(target); group != group_members.end()) {
        resolved.insert(resolved.end(), group->second.begin(), group->second.end());
      } else if (by_name.count(target)) {
        resolved.push_back(target);
      } else if (unknown_reported.emplace(vm.group, target).second) {
        problems.add(where_of(*place.table, "after"), place.prefix + ".after",
                     "'" + target + "' names no VM of this fleet");
      }
    }
    vm.after = std::move(resolved);
  }
  // Cycles: depth-first search over `after`.
  std::map<std::string, int> mark;  // 0 new, 1 on the path, 2 done
  std::set<std::string> reported;
  std::function<bool(const std::string&, std::vector<std::string>&)> visit =
      [&](const std::string& name, std::vector<std::string>& path) {
        if (mark[name] == 2)
          return false;
        if (mark[name] == 1) {
          path.push_back(name);
          return true;
        }
        mark[name] = 1;
        path.push_back(name);
        auto it = by_name.find(name);
        if (it != by_name.end()) {
          for (const auto& next : fleet.vms[it->second].after) {
            if (visit(next, path))
              return true;
          }
        }
        path.pop_back();
        mark[name] = 2;
        return false;
      };
  for (const auto& place : placed) {
    const std::string& name = fleet.vms[place.vm].spec.name;
    std::vector<std::string> path;
    if (mark[name] == 0 && visit(name, path)) {
      std::string cycle;
      for (std::size_t k = std::find(path.begin(), path.end(), path.back()) - path.begin();
           k < path.size(); ++k)
        cycle += (cycle.empty() ? "" : " -> ") + path[k];
      if (reported.insert(cycle).second) {
        const toml::node* after_node = place.table->get("after");
        problems.add(after_node ? after_node->source() : place.table->source(),
                     place.prefix + ".after", "start order has a cycle: " + cycle);
      }
      for (const auto& member : path)
        mark[member] = 2;
    }
  }
  if (!problems.empty())
    return make_error(ErrorKind::invalid_config, problems.to_string());
  return fleet;
}

Expected<FleetSpec> load_fleet_file(const std::filesystem::path& path) {
  auto text = read_text_file(path);
  if (!text)
    return make_error(ErrorKind::invalid_config, text.error());
  return parse_fleet(*text, std::filesystem::absolute(path));
}

}  // namespace crosvisor::config
