#include "daemon/cluster_host.hpp"

#include <spdlog/spdlog.h>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <map>
#include <memory>
#include <set>
#include <span>

#include "actors/fleet_actor.hpp"
#include "cluster/cluster_fleet.hpp"
#include "cluster/coordinator.hpp"
#include "core/unix_time.hpp"
#include "daemon/restore.hpp"

namespace crosvisor::daemon {
namespace {

using tick_atom = caf::atom_constant<caf::atom("cltick")>;
using flush_status_atom = caf::atom_constant<caf::atom("clflush")>;

// Statuses are written a moment after they change, many in one transaction: a host starting
// hundreds of VMs would otherwise wait on etcd (and its disk) three times for each.
constexpr auto kStatusDelay = std::chrono::milliseconds(50);
// etcd's default --max-txn-ops is 128 (per branch).
constexpr std::size_t kStatusesPerTxn = 100;

}  // namespace

void ClusterFence::fence() {
  std::lock_guard lock(mutex_);
  fenced_ = true;
  ++fences_;
  last_fence_ms_ = unix_now_ms();
  for (const auto& [vm, fleet] : fleets_) {
    spdlog::error("cluster: fenced: stopping {} of fleet {} (SIGKILL after {} ms)", vm.second,
                  vm.first, grace_.count());
    caf::anon_send<caf::message_priority::high>(fleet, stop_atom::value,
                                                static_cast<std::uint32_t>(grace_.count()));
  }
  fleets_.clear();
}

void ClusterFence::rejoined() {
  std::lock_guard lock(mutex_);
  fenced_ = false;
}

bool ClusterFence::fenced() const {
  std::lock_guard lock(mutex_);
  return fenced_;
}

std::pair<std::uint64_t, std::int64_t> ClusterFence::history() const {
  std::lock_guard lock(mutex_);
  return {fences_, last_fence_ms_};
}

bool ClusterFence::add(const std::pair<std::string, std::string>& vm, const FleetActor& fleet) {
  std::lock_guard lock(mutex_);
  if (fenced_) {
    caf::anon_send<caf::message_priority::high>(fleet, stop_atom::value, kill_atom::value);
    return false;
  }
  fleets_[vm] = fleet;
  return true;
}

void ClusterFence::remove(const std::pair<std::string, std::string>& vm) {
  std::lock_guard lock(mutex_);
  fleets_.erase(vm);
}

void ClusterFence::watch_vmm(pid_t pid) {
  if (!keeper_)
    return;
  if (auto watched = keeper_->watch(pid); !watched)
    spdlog::warn("cluster: the fence keeper cannot watch pid {}: {}", pid, watched.error().message);
}

void ClusterFence::unwatch_vmm(pid_t pid) {
  if (keeper_)
    keeper_->unwatch(pid);
}

namespace {

struct Running {
  FleetActor fleet;  // a fleet of one: this VM
  cluster::VmStatus status;
  bool has_ready = false;  // it has a ready condition: up when ready, not merely running
};

struct ClusterHostState {
  static inline const char* name = "crosvisor.cluster_host";
  ClusterHostState() = default;
  ClusterHostConfig config;
  std::unique_ptr<cluster::EtcdClient> etcd;
  std::unique_ptr<cluster::Coordinator> coordinator;
  std::map<cluster::VmKey, Running> running;
  std::uint64_t fences_seen = 0;
  std::uint64_t events = 0;
  std::set<std::string> said;        // problems reported once
  std::set<cluster::VmKey> changed;  // statuses not written yet
  bool flush_due = false;

  // Ended (the daemon stops): the cluster's VMs here stop with it, and the host leaves.
  ~ClusterHostState() {
    for (const auto& [vm, here] : running) {
      config.fence->remove(vm);
      caf::anon_send(here.fleet, stop_atom::value, std::uint32_t{10'000});
    }
  }
};

using Self = caf::stateful_actor<ClusterHostState>*;

void say(Self self, cluster::ClusterEvent event) {
  auto& st = self->state;
  if (event.at_ms == 0)
    event.at_ms = unix_now_ms();
  event.host = st.config.host;
  if (auto put = cluster::record_event(*st.etcd, event, st.config.host, ++st.events); !put)
    spdlog::warn("cluster: event not recorded: {}", put.error().message);
}

// Writes the statuses that changed, each only while its VM is placed here: a host that was
// cut off and hears late of its VMs' ends must not write over what the host they moved to says.
// A batch refused (one of them moved) is written again one by one.
void write_statuses(Self self) {
  auto& st = self->state;
  st.flush_due = false;
  const std::int64_t lease = st.config.lease();
  if (lease == 0) {
    st.changed.clear();  // not in the cluster now: what runs here is decided afresh on joining
    return;
  }
  using cluster::Compare;
  using cluster::Operation;
  const auto write = [&](std::span<const cluster::VmKey> vms) {
    cluster::Txn txn;
    for (const auto& vm : vms) {
      txn.compare.push_back(
          {cluster::placement_key(vm), Compare::Target::value, st.config.host, 0});
      txn.success.push_back({Operation::Kind::put, cluster::status_key(vm),
                             to_json(st.running.at(vm).status).dump(), lease});
    }
    return st.etcd->commit(txn);
  };
  std::vector<cluster::VmKey> due;
  for (const auto& vm : st.changed) {
    if (st.running.count(vm) != 0)
      due.push_back(vm);
  }
  st.changed.clear();
  const std::span<const cluster::VmKey> all(due);
  for (std::size_t first = 0; first < all.size(); first += kStatusesPerTxn) {
    const auto batch = all.subspan(first, std::min(kStatusesPerTxn, all.size() - first));
    auto written = write(batch);
    if (written && *written)
      continue;
    if (!written) {
      spdlog::warn("cluster: statuses not written: {}", written.error().message);
      st.changed.insert(batch.begin(), batch.end());  // tried again
      continue;
    }
    for (std::size_t i = 0; batch.size() > 1 && i < batch.size(); ++i)
      (void)write(batch.subspan(i, 1));
  }
  if (!st.changed.empty()) {
    st.flush_due = true;
    self->delayed_send(self, st.config.period, flush_status_atom::value);
  }
}

void status_changed(Self self, const cluster::VmKey& vm) {
  auto& st = self->state;
  st.changed.insert(vm);
  if (!st.flush_due) {
    st.flush_due = true;
    self->delayed_send(self, kStatusDelay, flush_status_atom::value);
  }
}

// Starts `names` of `record` here: its files reopened once as its owner, each VM alone in a
// fleet of its own (the rest of its fleet runs where it is placed).
void start(Self self, const cluster::ClusterFleet& record, const std::set<std::string>& names) {
  auto& st = self->state;
  const auto cannot = [&](const std::string& vm, const std::string& why) {
    if (st.said.insert(record.name + "/" + vm + why).second)
      spdlog::error("cluster: {} of fleet {} cannot start here: {}", vm, record.name, why);
  };
  auto fleet = reopen_fleet(record.fleet, record.owner_uid, record.owner_gid);
  if (!fleet) {
    for (const auto& name : names)
      cannot(name, fleet.error().message);
    return;
  }
  for (auto& member : fleet->vms) {
    const std::string name = member.spec.name;
    if (names.count(name) == 0)
      continue;
    if (!member.unavailable.empty()) {
      cannot(name, member.unavailable);
      continue;
    }
    const cluster::VmKey vm{record.name, name};
    const bool has_ready = has_ready_condition(member.spec);
    member.after.clear();  // placed once they are up (the coordinator), wherever they run
    config::FleetSpec one;
    one.name = fleet->name;
    one.concurrency = 1;
    one.vms.push_back(std::move(member));
    spdlog::info("cluster: starting {} of fleet {} here", name, record.name);
    FleetLife life;
    life.subscriber = caf::actor_cast<caf::actor>(self);  // from its first event: the VMM's pid
    auto actor = spawn_fleet(self->system(), st.config.service, std::move(one), std::move(life));
    if (!st.config.fence->add(vm, actor))
      return;  // fenced meanwhile: stopped at once, and nothing more starts
    self->monitor(actor);
    cluster::VmStatus status;
    status.host = st.config.host;
    status.state = "starting";
    status.since_ms = unix_now_ms();
    st.running[vm] = Running{actor, std::move(status), has_ready};
    status_changed(self, vm);
  }
}

void stop(Self self, const cluster::VmKey& vm, std::uint32_t grace_ms) {
  auto& st = self->state;
  auto found = st.running.find(vm);
  if (found == st.running.end())
    return;
  spdlog::info("cluster: stopping {} of fleet {} here: no longer placed here", vm.second, vm.first);
  caf::anon_send<caf::message_priority::high>(found->second.fleet, stop_atom::value, grace_ms);
  st.config.fence->remove(vm);
  st.running.erase(found);
  // Its status goes with its fleet; a VM that moved has its new host's status, left alone.
  (void)st.etcd->commit(
      {{{cluster::placement_key(vm), cluster::Compare::Target::create_revision, {}, 0}},
       {{cluster::Operation::Kind::remove, cluster::status_key(vm), {}, 0}},
       {}});
}

// What is placed here runs here, and nothing else.
void reconcile(Self self) {
  auto& st = self->state;
  auto placements = st.etcd->get_prefix(cluster::kPlacementsPrefix);
  if (!placements)
    return;  // unknown: change nothing
  std::set<cluster::VmKey> mine;
  for (const auto& kv : placements->kvs) {
    if (auto vm = cluster::vm_of_key(kv.key, cluster::kPlacementsPrefix);
        vm && kv.value == st.config.host)
      mine.insert(*vm);
  }
  std::vector<cluster::VmKey> gone;
  for (const auto& [vm, running] : st.running) {
    if (mine.count(vm) == 0)
      gone.push_back(vm);
  }
  for (const auto& vm : gone)
    stop(self, vm, 10'000);
  // The VMs to start, by fleet: each fleet read and its files reopened once per round.
  std::map<std::string, std::set<std::string>> missing;
  for (const auto& vm : mine) {
    if (st.running.count(vm) == 0)
      missing[vm.first].insert(vm.second);
  }
  for (const auto& [name, vms] : missing) {
    auto found = st.etcd->get(cluster::kFleetsPrefix + name);
    if (!found || found->kvs.empty())
      continue;
    if (auto record = cluster::from_text(found->kvs[0].value, cluster::cluster_fleet_from))
      start(self, *record, vms);
  }
}

}  // namespace

caf::actor spawn_cluster_host(caf::actor_system& system, ClusterHostConfig config,
                              cluster::EtcdClient client) {
  auto owned = std::make_shared<cluster::EtcdClient>(std::move(client));
  // Its parts come as arguments, not captures (see cluster_reader.cpp).
  return system.spawn<caf::detached>(
      [](Self self, ClusterHostConfig given,
         std::shared_ptr<cluster::EtcdClient> etcd) -> caf::behavior {
        auto& st = self->state;
        st.config = std::move(given);
        st.etcd = std::make_unique<cluster::EtcdClient>(std::move(*etcd));
        st.coordinator = std::make_unique<cluster::Coordinator>(st.config.host);
        self->set_down_handler([=](const caf::down_msg& down) {
          auto& s = self->state;
          for (auto it = s.running.begin(); it != s.running.end(); ++it) {
            if (it->second.fleet.address() == down.source) {
              s.config.fence->remove(it->first);
              s.running.erase(it);
              return;
            }
          }
        });
        self->send(self, tick_atom::value);
        return {
            [=](tick_atom) {
              auto& s = self->state;
              const std::int64_t lease = s.config.lease();
              if (s.config.fence->fenced()) {
                s.running.clear();  // stopped by the fence itself
              } else if (lease != 0) {
                if (const auto [fences, at_ms] = s.config.fence->history();
                    fences > s.fences_seen) {
                  // Fenced since the last look (and joined again): its VMs were stopped; said now
                  // that this host can write again, and what runs here is decided afresh.
                  s.fences_seen = fences;
                  s.running.clear();
                  s.said.clear();
                  say(self,
                      {at_ms, "fenced", "", "", "",
                       "no renewal of its lease in time: its cluster VMs were stopped; joined "
                       "again"});
                }
                if (auto round = s.coordinator->round(*s.etcd, lease); !round)
                  spdlog::debug("cluster: coordinator round: {}", round.error().message);
                reconcile(self);
              }
              self->delayed_send(self, s.config.period, tick_atom::value);
            },
            [=](const VmEvent& event) {
              auto& s = self->state;
              for (auto& [vm, running] : s.running) {
                if (vm.second != event.vm)
                  continue;
                running.status.state = std::string(to_string(event.state));
                running.status.up = event.state == VmState::ready ||
                                    (event.state == VmState::running && !running.has_ready);
                running.status.since_ms = unix_now_ms();
                running.status.detail = event.detail;
                if (event.pid && running.status.pid != *event.pid) {
                  if (running.status.pid)
                    s.config.fence->unwatch_vmm(static_cast<pid_t>(*running.status.pid));
                  running.status.pid = *event.pid;
                  s.config.fence->watch_vmm(*event.pid);
                }
                if (event.state == VmState::dead) {
                  if (running.status.pid)
                    s.config.fence->unwatch_vmm(static_cast<pid_t>(*running.status.pid));
                  running.status.pid.reset();
                  say(self, {0, "died", vm.first, vm.second, "",
                             std::string(to_string(event.reason.value_or(DeathReason::unknown))) +
                                 (event.detail.empty() ? "" : ": " + event.detail)});
                }
                status_changed(self, vm);
              }
            },
            [=](flush_status_atom) { write_statuses(self); },
            [=](const ConsoleText&) {},
        };
      },
      std::move(config), std::move(owned));
}

}  // namespace crosvisor::daemon
