#include "daemon/restore.hpp"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <caf/scoped_actor.hpp>
#include <set>

#include "crosvisor/error_bridge.hpp"
#include "process/open_as.hpp"
#include "process/pidfd.hpp"
#include "process/proc_identity.hpp"
#include "protocol/stored_fleet.hpp"

namespace crosvisor::daemon {
namespace {

// The fleet a record describes, its files reopened as its owner.
Expected<config::FleetSpec> reopen(const store::FleetRecord& record) {
  return reopen_fleet(record.fleet, record.owner_uid, record.owner_gid);
}

// The VMMs of a fleet's VMs left running by the daemon before, by fleet: records of this boot
// whose fleet is kept. Any other record is dropped; a VMM of a fleet that is no longer kept, if it
// still runs (and is the one recorded), is killed: nothing would ever stop it.
std::map<std::pair<std::uint32_t, std::string>, TakenOver> sort_vm_records(
    const store::StateStore& state, const store::LoadedState& loaded, const std::string& boot,
    const StateKeeperActor& keeper, std::vector<store::VmRecord>& kept,
    const std::vector<std::string>& own_vms, std::map<std::string, store::VmRecord>& own) {
  std::map<std::pair<std::uint32_t, std::string>, TakenOver> by_fleet;
  for (const auto& vm : loaded.vms) {
    if (vm.owner_uid == store::kDaemonOwned) {
      // Of the command line: this daemon's takes it over if it names it too.
      if (vm.boot_id == boot &&
          std::find(own_vms.begin(), own_vms.end(), vm.name) != own_vms.end()) {
        own[vm.name] = vm;
        kept.push_back(vm);
        continue;
      }
      if (vm.boot_id == boot) {
        if (auto pidfd = process::open_same_process({vm.pid, vm.start_time, vm.args})) {
          spdlog::warn(
              "state: VM {} of the command line before runs, but this one does not "
              "name it: killing it (pid {})",
              vm.name, vm.pid);
          pidfd_send_signal(pidfd->get(), SIGKILL, nullptr, 0);
        }
      }
      caf::anon_send(keeper, drop_vm_atom::value, vm.owner_uid, vm.name);
      continue;
    }
    const bool has_fleet = std::any_of(loaded.fleets.begin(), loaded.fleets.end(), [&](auto& f) {
      return f.owner_uid == vm.owner_uid && f.name == vm.fleet;
    });
    if (vm.boot_id == boot && has_fleet) {
      by_fleet[{vm.owner_uid, vm.fleet}].vms[vm.name] = vm;
      kept.push_back(vm);
      continue;
    }
    // A fleet whose record exists but could not be read (an I/O error), or was found damaged
    // and moved aside: its VMs are not its daemon's to kill. Left running, and said so.
    const auto fleet_file = state.fleet_file(vm.owner_uid, vm.fleet);
    std::error_code ec;
    const bool unreadable =
        std::filesystem::exists(fleet_file, ec) ||
        std::any_of(loaded.problems.begin(), loaded.problems.end(), [&](const auto& problem) {
          return problem.what.find(fleet_file.string()) != std::string::npos;
        });
    if (vm.boot_id == boot && unreadable) {
      spdlog::error(
          "state: VM {} (pid {}) is left running unsupervised: the record of its fleet "
          "{} cannot be read (see above)",
          vm.name, vm.pid, vm.fleet);
      kept.push_back(vm);
      continue;
    }
    if (vm.boot_id == boot) {
      if (auto pidfd = process::open_same_process({vm.pid, vm.start_time, vm.args})) {
        spdlog::warn("state: VM {} runs, but its fleet {} is gone: killing it (pid {})", vm.name,
                     vm.fleet, vm.pid);
        pidfd_send_signal(pidfd->get(), SIGKILL, nullptr, 0);
      }
    }
    caf::anon_send(keeper, drop_vm_atom::value, vm.owner_uid, vm.name);
  }
  return by_fleet;
}

// The same for networks: those of kept fleets are found again by their fleets; the dnsmasq of
// any other, if it still runs, is killed (its namespace goes with it and its last VM).
void sort_network_records(const store::StateStore& state, const store::LoadedState& loaded,
                          const std::string& boot, const StateKeeperActor& keeper,
                          std::map<std::pair<std::uint32_t, std::string>, TakenOver>& by_fleet,
                          std::vector<store::NetworkRecord>& kept) {
  for (const auto& network : loaded.networks) {
    const bool has_fleet = std::any_of(loaded.fleets.begin(), loaded.fleets.end(), [&](auto& f) {
      return f.owner_uid == network.owner_uid && f.name == network.fleet;
    });
    std::error_code ec;
    const bool fleet_unreadable =
        std::filesystem::exists(state.fleet_file(network.owner_uid, network.fleet), ec);
    if (network.boot_id == boot && (has_fleet || fleet_unreadable)) {
      if (has_fleet)
        by_fleet[{network.owner_uid, network.fleet}].networks[network.name] = network;
      kept.push_back(network);
      continue;
    }
    if (network.boot_id == boot && network.dnsmasq_pid > 0) {
      if (auto pidfd = process::open_same_process(
              {network.dnsmasq_pid, network.dnsmasq_start_time, network.dnsmasq_args})) {
        spdlog::warn(
            "state: network {} runs, but its fleet {} is gone: killing its dnsmasq (pid {})",
            network.name, network.fleet, network.dnsmasq_pid);
        pidfd_send_signal(pidfd->get(), SIGKILL, nullptr, 0);
      }
    }
    caf::anon_send(keeper, drop_network_atom::value, network.owner_uid, network.name);
  }
}

}  // namespace

Expected<config::FleetSpec> reopen_fleet(const nlohmann::json& message, std::uint32_t uid,
                                         std::uint32_t gid) {
  auto files = protocol::files_named(message);
  if (!files)
    return std::unexpected(files.error());
  auto opened = process::open_as({uid, gid}, *files);
  if (!opened)
    return std::unexpected(opened.error());
  auto fleet = protocol::fleet_from_reopened(message, std::move(*opened));
  if (!fleet)
    return std::unexpected(fleet.error());
  for (auto& vm : fleet->vms)
    vm.spec.owner_uid = uid;
  return fleet;
}

RestoreSummary restore_fleets(caf::scoped_actor& self, const store::StateStore& state,
                              const FleetRegistryActor& fleets, const StateKeeperActor& keeper,
                              const std::vector<std::string>& own_vms,
                              const process::CgroupHost* cgroups) {
  RestoreSummary summary;
  auto loaded = state.load();
  for (const auto& problem : loaded.problems)
    spdlog::error("state: {}", problem.what);
  const std::string boot = process::boot_id();
  std::vector<store::VmRecord> kept;
  auto taken_over = sort_vm_records(state, loaded, boot, keeper, kept, own_vms, summary.own_vms);
  std::vector<store::NetworkRecord> kept_networks;
  sort_network_records(state, loaded, boot, keeper, taken_over, kept_networks);
  // Directories of VMs and networks that ended while no daemon ran (or whose records are gone).
  if (const auto removed = state.remove_unused_run_dirs(kept, kept_networks); removed > 0)
    spdlog::info("state: removed {} run director{} of VMs no longer running", removed,
                 removed == 1 ? "y" : "ies");
  // The cgroups of the VMMs not taken over: a killed daemon's VMs that were not to outlive it
  // (found by the soak, bench/soak_bench.cpp: a VMM still on its way out when the cgroups were
  // swept at start kept its cgroup until the next daemon). VM cgroups are named after run dirs.
  // Not when a record could not be read: its VM's VMM is not this daemon's to kill (see
  // sort_vm_records), and without the record its cgroup cannot be told apart.
  if (cgroups && loaded.problems.empty()) {
    std::set<std::string> taken;
    for (const auto& vm : kept)
      taken.insert(vm.run_dir.filename().string());
    if (const auto removed = cgroups->remove_orphans(taken, std::chrono::seconds(5)); removed > 0)
      spdlog::info("cgroups: {} of VMMs not taken over emptied and removed", removed);
  }
  for (auto record : loaded.fleets) {
    const std::string who = "fleet " + record.name + " of uid " + std::to_string(record.owner_uid);
    if (record.boot_id != boot && !record.persistent) {
      spdlog::info("state: {} was up before the host restarted and is not persistent: forgotten",
                   who);
      self->request(keeper, std::chrono::seconds(30), drop_fleet_atom::value, record.owner_uid,
                    record.name)
          .receive([](bool) {}, [](caf::error&) {});
      ++summary.forgotten;
      continue;
    }
    auto fleet = reopen(record);
    if (!fleet) {
      spdlog::error("state: {} cannot come up: {}", who, fleet.error().message);
      ++summary.failed;
      continue;
    }
    record.boot_id = boot;
    auto& left_running = taken_over[{record.owner_uid, record.name}];
    const std::size_t running = left_running.vms.size();
    self->request(fleets, std::chrono::seconds(60), fleet_up_atom::value, std::move(*fleet),
                  record.owner_uid, std::optional<store::FleetRecord>(record),
                  std::move(left_running))
        .receive(
            [&](const FleetActor&) {
              spdlog::info(
                  "state: {} is coming up again{}{}", who, record.persistent ? " (persistent)" : "",
                  running > 0 ? ", taking over " + std::to_string(running) + " VM(s) still running"
                              : "");
              ++summary.restored;
            },
            [&](caf::error& error) {
              spdlog::error("state: {} cannot come up: {}", who, from_caf_error(error).message);
              ++summary.failed;
            });
  }
  return summary;
}

}  // namespace crosvisor::daemon
