#include "cluster/placement.hpp"

#include <algorithm>
#include <set>

namespace crosvisor::cluster {
namespace {

bool offers(const LiveHost& host, const std::string& vmm) {
  return vmm.empty() || std::find(host.vmms.begin(), host.vmms.end(), vmm) != host.vmms.end();
}

bool allowed(const Want& want, const std::string& host) {
  return want.hosts.empty() ||
         std::find(want.hosts.begin(), want.hosts.end(), host) != want.hosts.end();
}

}  // namespace

Plan plan_placements(const std::vector<Want>& wants, const std::vector<LiveHost>& unsorted,
                     const std::map<VmKey, std::string>& current, const std::set<VmKey>& up) {
  Plan plan;
  std::vector<LiveHost> live = unsorted;  // ties go to the first name
  std::sort(live.begin(), live.end(),
            [](const LiveHost& a, const LiveHost& b) { return a.name < b.name; });
  std::map<std::string, const LiveHost*> alive;
  for (const auto& host : live)
    alive[host.name] = &host;
  std::map<std::string, std::size_t> load;  // VMs per live host
  std::map<std::pair<std::string, std::string>, std::set<std::string>> group_hosts;
  std::set<VmKey> wanted;
  std::vector<const Want*> homeless;

  // First what stays: VMs on live hosts, and those that wait for theirs.
  for (const auto& want : wants) {
    wanted.insert(want.vm);
    auto placed = current.find(want.vm);
    if (placed == current.end()) {
      homeless.push_back(&want);
      continue;
    }
    if (alive.count(placed->second) != 0) {
      ++load[placed->second];
      group_hosts[{want.vm.first, want.group}].insert(placed->second);
      continue;
    }
    if (want.wait_on_loss) {
      plan.stuck.push_back({want.vm, "waits for its host " + placed->second + ", which is lost"});
      group_hosts[{want.vm.first, want.group}].insert(placed->second);
      continue;
    }
    homeless.push_back(&want);
  }
  for (const auto& [vm, host] : current) {
    if (wanted.count(vm) == 0)
      plan.drop.push_back(vm);
  }

  // Then each VM without a live place, in the fleets' order.
  for (const Want* want : homeless) {
    const auto waiting_for =
        std::find_if(want->after.begin(), want->after.end(), [&](const std::string& dep) {
          return up.count({want->vm.first, dep}) == 0;
        });
    if (waiting_for != want->after.end()) {
      plan.stuck.push_back({want->vm, "waits for " + *waiting_for + " to be up (after)"});
      continue;
    }
    auto& used = group_hosts[{want->vm.first, want->group}];
    const LiveHost* best = nullptr;
    bool best_apart = false;
    double best_load = 0;
    for (const auto& host : live) {
      if (!allowed(*want, host.name) || !offers(host, want->vmm))
        continue;
      const bool apart = !want->spread || used.count(host.name) == 0;
      const double per_cpu =
          static_cast<double>(load[host.name]) / static_cast<double>(std::max(1u, host.cpus));
      const bool better =
          best == nullptr || (apart && !best_apart) || (apart == best_apart && per_cpu < best_load);
      if (better) {
        best = &host;
        best_apart = apart;
        best_load = per_cpu;
      }
    }
    auto placed = current.find(want->vm);
    std::optional<std::string> from;
    if (placed != current.end())
      from = placed->second;
    if (best == nullptr) {
      plan.stuck.push_back(
          {want->vm, live.empty() ? "no host is up"
                                  : "no live host may run it (hosts, or its VMM " +
                                        (want->vmm.empty() ? std::string("?") : want->vmm) + ")"});
      continue;
    }
    ++load[best->name];
    used.insert(best->name);
    std::string why = from ? "its host " + *from + " is lost" : "new";
    if (want->spread && !best_apart)
      why += "; not apart from its other replicas: too few hosts";
    plan.place.push_back({want->vm, from, best->name, why});
  }
  return plan;
}

}  // namespace crosvisor::cluster
