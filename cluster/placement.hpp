// Where the VMs of cluster fleets run (docs/cluster.md): the coordinator's decisions, as pure
// logic over what etcd says. A VM keeps its host while the host is alive; one whose host is lost
// is placed again elsewhere, or, with on_host_loss = "wait" (forced for a VM with a writable
// disk), left where it was until its host returns. A new or moved VM goes to the least loaded
// live host (VMs per CPU, then name) that offers its VMM and is among its allowed hosts; with
// spread, one its group's other replicas do not use if there is one. A VM with `after` is
// placed only once those VMs are up, wherever they run. Deterministic: the same view gives the
// same plan, whoever computes it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace crosvisor::cluster {

using VmKey = std::pair<std::string, std::string>;  // fleet, VM

// A VM of a cluster fleet, and where it may run.
struct Want {
  VmKey vm;
  std::string group;               // its [[vm]] entry: the replicas spread apart
  std::vector<std::string> hosts;  // allowed hosts; empty: any
  bool spread = false;
  bool wait_on_loss = false;
  std::string vmm;  // "qemu" or "crosvm": the host must offer it
  // VMs of its fleet it starts after (`after`): it is placed only once each of them is up,
  // wherever they run.
  std::vector<std::string> after;
};

struct LiveHost {
  std::string name;
  std::vector<std::string> vmms;
  std::uint32_t cpus = 1;
};

struct Decision {
  VmKey vm;
  std::optional<std::string> from;  // the lost host it leaves
  std::string to;
  std::string why;
};

// A VM left without a running place: no host can take it, or it waits for its lost host.
struct Stuck {
  VmKey vm;
  std::string why;
};

struct Plan {
  std::vector<Decision> place;
  std::vector<Stuck> stuck;
  std::vector<VmKey> drop;  // placements of VMs no fleet wants any more
};

// `up`: the VMs that are up now (ready, or running without a ready condition), as their hosts
// say.
Plan plan_placements(const std::vector<Want>& wants, const std::vector<LiveHost>& live,
                     const std::map<VmKey, std::string>& current, const std::set<VmKey>& up = {});

}  // namespace crosvisor::cluster
