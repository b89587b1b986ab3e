// The service actor: the front door. It validates and delegates: every VM is its own actor, and
// the service only keeps the directory of live VMs by owner and name (two users of one daemon
// may each have a VM called "web"; neither learns of the other's).
#include <pwd.h>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <chrono>
#include <deque>
#include <map>
#include <set>
#include <unordered_map>

#include "actors/cid_registry.hpp"
#include "actors/client_proxy.hpp"
#include "actors/durable_vms.hpp"
#include "actors/fleet_actor.hpp"
#include "actors/network_actor.hpp"
#include "actors/state_keeper.hpp"
#include "actors/vm_actor.hpp"
#include "core/unix_time.hpp"
#include "crosvisor/error_bridge.hpp"
#include "crosvisor/messages.hpp"
#include "crosvisor/service.hpp"
#include "lifecycle/image_claims.hpp"
#include "lifecycle/owner_limits.hpp"
#include "net/subnets.hpp"
#include "process/proc_identity.hpp"
#include "store/state_store.hpp"
#include "vmm/confinement.hpp"
#include "vmm/reactor.hpp"

namespace crosvisor {
namespace {

// A VM's name is unique among the VMs of its owner (embedded VMs have none).
using VmKey = std::pair<std::optional<std::uint32_t>, std::string>;

VmKey key_of(const VmSpec& spec) {
  return {spec.owner_uid, spec.name};
}

// The service, told of its VMs' states and deaths and its fleets' restarts, and the registry of
// networks.
using ServiceImpl = ServiceActor::extend_with<VmDeathWatcher>::extend_with<
    NetworkRegistry>::extend_with<FleetRestartSink>::extend_with<DurableVms>;

// A network is named per owner, as VMs are.
using NetworkKey = std::pair<std::optional<std::uint32_t>, std::string>;
struct NetworkEntry {
  caf::actor_addr actor;  // not a reference: a network lives while its fleet and VMs hold it
  Ipv4Subnet subnet;
};

struct ServiceState {
  static inline const char* name = "crosvisor.service";
  ServiceOptions options;
  CidRegistryActor cid_registry;
  std::map<VmKey, VmActorImpl> vms;  // VMs not dead yet
  // The same by name alone (any owner): what a request naming one VM looks up.
  std::unordered_multimap<std::string, VmActorImpl> by_name;
  // Restarts by their fleets so far, by VM: told before the restart's start (restarted_atom).
  std::map<VmKey, std::uint32_t> restarts;
  std::map<caf::actor_addr, VmKey> names;
  // What each live VM last told of itself (vm_info_atom): what a list shows.
  std::unordered_map<caf::actor_addr, std::shared_ptr<const VmSnapshot>> told;
  std::optional<lifecycle::OwnerUsage> usage;         // what each user holds
  lifecycle::ImageClaims images;                      // who writes and reads which image
  std::map<caf::actor_addr, std::uint64_t> claim_of;  // each live VM's claim on its images
  std::map<caf::actor_addr, std::size_t> fds_of;      // each live VM's estimate
  std::uint64_t next_run_id = 1;
  std::map<NetworkKey, NetworkEntry> networks;
  std::map<caf::actor_addr, std::string> fleet_of;  // live VMs of fleets
  // The dead, as `info` last said (vm list --all), until forgotten; oldest first.
  std::deque<VmInfo> dead;
  // What happened lately, for those who watch every VM (vm events), and who they are.
  std::deque<SupervisorEvent> events;
  std::vector<caf::actor> watchers;
  // Live restore (options.state_dir): the store of durable VMs' directories, their records'
  // writer, this boot of the host, and which live VMs are durable.
  std::optional<store::StateStore> state;
  StateKeeperActor keeper;
  std::string boot_id;
  std::set<caf::actor_addr> durable;
  std::set<caf::actor_addr> durable_networks;

  // When the service ends, so do its VMs (each kills its child as it goes).
  ~ServiceState() {
    if (cid_registry)
      caf::anon_send_exit(cid_registry, caf::exit_reason::user_shutdown);
    if (keeper)
      caf::anon_send(keeper, finish_atom::value);
    for (auto& entry : vms)
      caf::anon_send_exit(entry.second, caf::exit_reason::user_shutdown);
  }
};

using ServiceSelf = ServiceImpl::stateful_pointer<ServiceState>;

// The VM no longer holds its name (it died, or its actor ended).
void forget(ServiceSelf self, const caf::actor_addr& vm) {
  auto& st = self->state;
  auto it = st.names.find(vm);
  if (it == st.names.end())
    return;
  st.usage->remove(it->second.first, st.fds_of[vm]);
  st.fds_of.erase(vm);
  st.images.release(st.claim_of[vm]);
  st.claim_of.erase(vm);
  auto [first, last] = st.by_name.equal_range(it->second.second);
  for (auto named = first; named != last; ++named) {
    if (named->second.address() == vm) {
      st.by_name.erase(named);
      break;
    }
  }
  st.vms.erase(it->second);
  st.names.erase(it);
  st.told.erase(vm);
  st.fleet_of.erase(vm);
  st.durable.erase(vm);
}

// Remembered, and told to every watcher.
void record(ServiceSelf self, SupervisorEvent event) {
  auto& st = self->state;
  for (const auto& watcher : st.watchers)
    caf::anon_send(watcher, event);
  st.events.push_back(std::move(event));
  if (st.events.size() > kRememberedEvents)
    st.events.pop_front();
}

// A dead VM, remembered in place of an earlier death of its name.
void remember(ServiceSelf self, VmInfo info) {
  auto& dead = self->state.dead;
  std::erase_if(dead, [&](const VmInfo& other) {
    return other.owner_uid == info.owner_uid && other.name == info.name;
  });
  const auto owner = info.owner_uid;
  dead.push_back(std::move(info));
  const auto mine = std::count_if(dead.begin(), dead.end(),
                                  [&](const VmInfo& other) { return other.owner_uid == owner; });
  if (static_cast<std::size_t>(mine) > kRememberedDeadPerOwner) {
    dead.erase(std::find_if(dead.begin(), dead.end(),
                            [&](const VmInfo& other) { return other.owner_uid == owner; }));
  }
}

// Spawns the VM and its first handle, and delivers the handle before the VM says anything.
// The live networks a VM's interfaces name, in order; or why one is missing.
Expected<std::vector<NetworkActor>> networks_of(ServiceSelf self, const VmSpec& spec) {
  std::vector<NetworkActor> found;
  for (const auto& nic : spec.nics) {
    auto entry = self->state.networks.find(NetworkKey{spec.owner_uid, nic.network});
    auto network = entry == self->state.networks.end()
                       ? NetworkActor()
                       : caf::actor_cast<NetworkActor>(entry->second.actor);
    if (!network) {
      return make_error(ErrorKind::not_found,
                        "VM " + spec.name + ": no network named " + nic.network +
                            " of yours is up (a fleet's [[network]] brings one up)");
    }
    found.push_back(std::move(network));
  }
  return found;
}

void start_vm(ServiceSelf self, VmSpec spec, caf::actor client,
              caf::typed_response_promise<VmHandle> reply, std::optional<DurableStart> durable) {
  auto& st = self->state;
  auto networks = networks_of(self, spec);
  if (!networks) {
    reply.deliver(to_caf_error(networks.error()));
    return;
  }
  const std::size_t fds = lifecycle::estimated_fds(spec);
  const bool counted = st.usage->limits().fd_capacity > 0 && spec.owner_uid && *spec.owner_uid != 0;
  if (auto refused =
          st.usage->admit(spec.owner_uid, fds, counted ? lifecycle::open_fd_count() : 0)) {
    reply.deliver(to_caf_error(*refused));
    return;
  }
  const std::uint64_t run_id = st.next_run_id++;
  const VmKey key = key_of(spec);
  if (auto taken = st.images.claim(run_id, key.first, key.second, lifecycle::images_of(spec))) {
    reply.deliver(to_caf_error(*taken));
    return;
  }
  // A durable VM's directory outlives this process: in the state store, named by its record.
  const auto run_dir =
      durable ? (durable->takeover ? durable->takeover->run_dir : st.state->fresh_run_dir())
              : st.options.runtime_dir /
                    ("vm-" + std::to_string(getpid()) + "-" + std::to_string(run_id));
  if (spec.vmm_binary.empty()) {
    spec.vmm_binary =
        spec.vmm == VmmKind::crosvm ? st.options.vmm_binaries.crosvm : st.options.vmm_binaries.qemu;
  }
  const auto log_dir =
      spec.owner_uid ? st.options.log_dir / std::to_string(*spec.owner_uid) : st.options.log_dir;
  const auto dump_dir =
      spec.owner_uid ? st.options.dump_dir / std::to_string(*spec.owner_uid) : st.options.dump_dir;
  const auto nvram_dir = spec.owner_uid ? st.options.nvram_dir / std::to_string(*spec.owner_uid)
                                        : st.options.nvram_dir;
  VmPaths paths{run_dir,  log_dir / (spec.name + ".log"), st.options.log_max_bytes,
                dump_dir, st.options.dumps_per_vm,        nvram_dir / (spec.name + ".vars.fd")};
  if (st.options.confine_vmms)
    paths.confine =
        vmm::Confinement{st.options.vmm_user, st.options.runtime_dir / vmm::kSandboxRoot};
  paths.cgroups = st.options.cgroups;
  if (auto restarted = st.restarts.find(key); restarted != st.restarts.end())
    paths.restarts = restarted->second;
  paths.cgroups_unavailable = st.options.cgroups_unavailable;
  if (durable)
    paths.durable =
        VmPaths::Durable{st.keeper, st.boot_id, durable->restarts,
                         std::move(durable->recent_restarts_ms), std::move(durable->takeover)};
  const std::string spec_fleet = spec.fleet;
  auto vm =
      spawn_vm_actor(self->system(), std::move(spec), st.options.reactor, st.cid_registry,
                     caf::actor_cast<VmDeathWatcher>(self), std::move(paths), std::move(*networks));
  st.claim_of[vm.address()] = run_id;
  auto handle = spawn_client_proxy(self->system(), vm, std::move(client));
  // The service hears the VM's death (vm_dead_atom), to free its name at once: a dead VM's
  // actor lives on while clients hold handles on it, but a new VM may take the name. The monitor
  // covers an actor that ends without a death (its system shutting down).
  self->monitor(vm);
  if (!spec_fleet.empty())
    st.fleet_of[vm.address()] = spec_fleet;
  if (durable)
    st.durable.insert(vm.address());
  st.vms.emplace(key, vm);
  st.by_name.emplace(key.second, vm);
  st.names.emplace(vm.address(), key);
  st.usage->add(key.first, fds);
  st.fds_of[vm.address()] = fds;
  // The creator gets the handle before the VM says anything: deliver the reply first, then let
  // the VM launch. Its first event can only follow the reply in the mailbox.
  reply.deliver(VmHandle(handle));
  self->send(vm, launch_atom::value);
}

// A VM by that name of that owner may not run already: one whose death is still on its way here
// is asked.
caf::result<VmHandle> create(ServiceSelf self, VmSpec spec, caf::actor client,
                             std::optional<DurableStart> durable) {
  auto& st = self->state;
  if (!is_valid_vm_name(spec.name)) {
    return to_caf_error(ErrorKind::invalid_config,
                        "'" + spec.name + "' is not a VM name: " + kVmNameRule);
  }
  auto reply = self->make_response_promise<VmHandle>();
  auto existing = st.vms.find(key_of(spec));
  if (existing == st.vms.end()) {
    start_vm(self, std::move(spec), std::move(client), reply, std::move(durable));
    return reply;
  }
  // The name's holder may have died a moment ago, its death still on the way here (a fleet
  // restarting a VM hears of the death through its handle first): ask it.
  const std::string name = spec.name;
  const VmActorImpl holder = existing->second;
  self->request<caf::message_priority::high>(holder, std::chrono::seconds(10), info_atom::value)
      .then(
          [=](const VmInfo& info) mutable {
            if (info.state != VmState::dead) {
              reply.deliver(to_caf_error(ErrorKind::conflict,
                                         "a VM named '" + name + "' is already running"));
              return;
            }
            forget(self, holder.address());
            start_vm(self, std::move(spec), std::move(client), reply, std::move(durable));
          },
          [=](caf::error&) mutable {  // gone altogether
            forget(self, holder.address());
            start_vm(self, std::move(spec), std::move(client), reply, std::move(durable));
          });
  return reply;
}

caf::result<NetworkActor> network_up(ServiceSelf self, NetworkSpec spec,
                                     std::optional<std::uint32_t> owner,
                                     std::optional<DurableNetwork> durable) {
  auto& st = self->state;
  const NetworkKey key{owner, spec.name};
  if (durable && (!st.state || !owner))
    durable.reset();  // nowhere to keep it: it lives with the daemon
  // Taken over: the subnet it has, which its VMs' addresses are in (chosen by the daemon before
  // when the fleet names none).
  if (durable && durable->takeover && !spec.subnet)
    spec.subnet = parse_subnet(durable->takeover->subnet);
  if (auto existing = st.networks.find(key); existing != st.networks.end()) {
    if (caf::actor_cast<NetworkActor>(existing->second.actor))
      return to_caf_error(ErrorKind::conflict, "a network named " + spec.name + " is already up");
    st.networks.erase(existing);
  }
  // Apart from every other network of this daemon and every route of the host.
  std::vector<Ipv4Subnet> taken = net::host_routes();
  const std::size_t host_routes = taken.size();
  for (const auto& [other, entry] : st.networks)
    taken.push_back(entry.subnet);
  if (!spec.subnet) {
    spec.subnet = net::free_subnet(taken);
    if (!spec.subnet)
      return to_caf_error(ErrorKind::limit, "no free subnet left for network " + spec.name);
  }
  for (std::size_t i = 0; i < taken.size(); ++i) {
    if (!spec.subnet->overlaps(taken[i]))
      continue;
    return to_caf_error(ErrorKind::conflict,
                        "network " + spec.name + ": " + to_string(*spec.subnet) + " overlaps " +
                            (i < host_routes ? "a route of this host (" + to_string(taken[i]) + ")"
                                             : "another network's " + to_string(taken[i])));
  }
  const std::string dir_name = (owner ? std::to_string(*owner) : "app") + "-" + spec.name;
  NetworkPlace place{
      spec.name,         *spec.subnet, spec.dns, owner, st.options.network_dir / dir_name,
      std::move(durable)};
  if (place.durable) {
    // Its directory in the state store, beside its VMs': it outlives the daemon process.
    place.dir = place.durable->takeover ? place.durable->takeover->dir : st.state->fresh_run_dir();
    place.durable->keeper = st.keeper;
    place.durable->boot_id = st.boot_id;
  }
  const bool is_durable = place.durable.has_value();
  auto network = spawn_network(self->system(), std::move(place), st.options.reactor);
  self->monitor(network);
  if (is_durable)
    st.durable_networks.insert(network.address());
  st.networks[key] = NetworkEntry{network.address(), *spec.subnet};
  auto promise = self->make_response_promise<NetworkActor>();
  self->request(network, std::chrono::seconds(60), net_ready_atom::value)
      .then([=](const std::string&) mutable { promise.deliver(network); },
            [=](caf::error& error) mutable { promise.deliver(std::move(error)); });
  return promise;
}

ServiceImpl::behavior_type service_behavior(ServiceSelf self, ServiceOptions options) {
  self->state.options = std::move(options);
  const auto& cids = self->state.options;
  self->state.usage.emplace(lifecycle::OwnerLimits{cids.max_vms_per_owner, cids.max_fds_per_owner,
                                                   cids.fd_capacity, cids.fd_reserve});
  self->state.cid_registry = spawn_cid_registry(
      self->system(),
      CidRegistryOptions{{cids.cid_first, cids.cid_last}, cids.cid_scope, cids.cid_state_file});
  if (!self->state.options.reactor)
    self->state.options.reactor = std::make_shared<vmm::Reactor>();
  if (!self->state.options.state_dir.empty()) {
    auto& st = self->state;
    st.state.emplace(st.options.state_dir);
    st.keeper = spawn_state_keeper(self->system(),
                                   std::make_shared<const store::StateStore>(st.options.state_dir));
    st.boot_id = process::boot_id();
  }
  // Whatever it monitors ended: a VM's actor, a network or a watcher.
  self->set_down_handler([=](const caf::down_msg& down) {
    auto& st = self->state;
    std::erase_if(st.watchers,
                  [&](const caf::actor& watcher) { return watcher.address() == down.source; });
    std::erase_if(st.networks,
                  [&](const auto& entry) { return entry.second.actor == down.source; });
    st.durable_networks.erase(down.source);
    forget(self, down.source);
  });
  return {
      [=](create_atom, VmSpec spec, caf::actor client) -> caf::result<VmHandle> {
        return create(self, std::move(spec), std::move(client), std::nullopt);
      },
      [=](create_durable_atom, VmSpec spec, caf::actor client,
          DurableStart durable) -> caf::result<VmHandle> {
        if (!self->state.state)
          return to_caf_error(ErrorKind::state,
                              "this supervisor has no state directory: no VM "
                              "can outlive it");
        return create(self, std::move(spec), std::move(client), std::move(durable));
      },
      [=](let_go_all_atom) -> caf::result<std::uint32_t> {
        auto& st = self->state;
        auto promise = self->make_response_promise<std::uint32_t>();
        auto waiting =
            std::make_shared<std::size_t>(st.durable.size() + st.durable_networks.size());
        auto let_go = std::make_shared<std::uint32_t>(0);
        if (*waiting == 0)
          promise.deliver(std::uint32_t{0});
        auto finished = [promise, waiting, let_go](bool vm_gone) mutable {
          *let_go += vm_gone;
          if (--*waiting == 0)
            promise.deliver(*let_go);
        };
        // Their networks too: dnsmasq runs on, and holds each namespace for the next daemon.
        for (const auto& address : st.durable_networks) {
          auto network = caf::actor_cast<NetworkActor>(address);
          if (!network) {
            finished(false);
            continue;
          }
          self->request(network, std::chrono::seconds(10), net_let_go_atom::value)
              .then([=](bool) mutable { finished(false); },
                    [=](caf::error&) mutable { finished(false); });
        }
        for (const auto& address : st.durable) {
          auto vm = caf::actor_cast<VmActorImpl>(address);
          if (!vm) {
            finished(false);
            continue;
          }
          // Normal priority: what the VM was told before (a ready line) is recorded first.
          self->request(vm, std::chrono::seconds(10), let_go_atom::value)
              .then([=](bool gone) mutable { finished(gone); },
                    [=](caf::error&) mutable { finished(false); });
        }
        return promise;
      },
      [=](vm_dead_atom, const caf::actor_addr& vm, VmInfo info) {
        forget(self, vm);
        remember(self, std::move(info));
      },
      [=](vm_info_atom, const caf::actor_addr& vm, VmSnapshot& snapshot) {
        auto& st = self->state;
        if (st.names.count(vm) != 0)  // not forgotten (a death's info is the last word)
          st.told[vm] = std::make_shared<const VmSnapshot>(std::move(snapshot));
      },
      [=](vm_state_atom, const caf::actor_addr& vm, const VmEvent& event) {
        auto& st = self->state;
        auto named = st.names.find(vm);
        if (named == st.names.end())
          return;  // gone already
        auto fleet = st.fleet_of.find(named->first);
        record(self, SupervisorEvent{unix_now_ms(), named->second.first,
                                     fleet == st.fleet_of.end() ? "" : fleet->second,
                                     std::string(to_string(event.state)), event});
      },
      [=](restarted_atom, const std::string& vm, const std::string& fleet,
          std::optional<std::uint32_t> owner, std::uint32_t restarts) {
        self->state.restarts[VmKey{owner, vm}] = restarts;
        VmEvent event;
        event.vm = vm;
        event.state = VmState::created;
        event.detail =
            "restarted by fleet " + fleet + " (restart " + std::to_string(restarts) + ")";
        record(self, SupervisorEvent{unix_now_ms(), owner, fleet, "restarted", std::move(event)});
      },
      [=](history_atom) {
        return std::vector<VmInfo>(self->state.dead.begin(), self->state.dead.end());
      },
      [=](forget_atom, std::optional<std::uint32_t> owner, const std::string& name) {
        return std::erase_if(self->state.dead, [&](const VmInfo& info) {
                 return info.owner_uid == owner && info.name == name;
               }) != 0;
      },
      [=](watch_atom, caf::actor watcher) {
        auto& st = self->state;
        self->monitor(watcher);
        st.watchers.push_back(watcher);
        return std::vector<SupervisorEvent>(st.events.begin(), st.events.end());
      },
      [=](in_use_atom) { return self->delegate(self->state.cid_registry, in_use_atom::value); },
      [=](taken_atom, std::uint32_t owner, const std::vector<std::string>& names) {
        std::vector<std::string> taken;
        for (const auto& name : names) {
          if (self->state.vms.count(VmKey{owner, name}) != 0)
            taken.push_back(name);
        }
        return taken;
      },
      [=](network_up_atom, NetworkSpec spec, std::optional<std::uint32_t> owner,
          std::optional<DurableNetwork> durable) -> caf::result<NetworkActor> {
        return network_up(self, std::move(spec), owner, std::move(durable));
      },
      [=](dup_atom, const VmHandle& handle, caf::actor other_client) {
        // Every handle is a client proxy, which makes its copies itself.
        return self->delegate(caf::actor_cast<ClientProxyActor>(handle), dup_atom::value,
                              std::move(other_client));
      },
      [=](list_atom) {
        std::vector<VmActor> vms;
        for (auto& [name, vm] : self->state.vms)
          vms.push_back(vm);
        return vms;
      },
      [=](list_atom, info_atom) {
        auto& st = self->state;
        std::vector<ListedVm> vms;
        vms.reserve(st.vms.size());
        for (const auto& [key, vm] : st.vms) {
          auto told = st.told.find(vm.address());
          vms.push_back({vm, told == st.told.end() ? nullptr : told->second});
        }
        return vms;
      },
      [=](list_atom, const std::string& name) {
        std::vector<VmActor> vms;
        auto [first, last] = self->state.by_name.equal_range(name);
        for (auto it = first; it != last; ++it)
          vms.push_back(it->second);
        return vms;
      },
  };
}

}  // namespace

ServiceActor spawn_service(caf::actor_system& system, ServiceOptions options) {
  if (options.runtime_dir.empty())
    options.runtime_dir = default_runtime_dir();
  if (options.log_dir.empty())
    options.log_dir = options.runtime_dir / "logs";
  if (options.dump_dir.empty())
    options.dump_dir = options.runtime_dir / "dumps";
  if (options.nvram_dir.empty())
    options.nvram_dir = options.runtime_dir / "nvram";
  if (options.network_dir.empty())
    options.network_dir = options.runtime_dir / "networks";
  if (options.cid_state_file.empty()) {
    if (auto shared = user_runtime_dir())
      options.cid_state_file = *shared / "last-cid";
  }
  if (options.confine_vmms) {
    // Where each confined VMM builds its root, in its own mount namespace: empty here, always.
    std::error_code ec;
    std::filesystem::create_directories(options.runtime_dir / vmm::kSandboxRoot, ec);
  }
  return system.spawn(service_behavior, std::move(options));
}

}  // namespace crosvisor
