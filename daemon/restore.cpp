#include "daemon/restore.hpp"

#include <spdlog/spdlog.h>

#include <caf/scoped_actor.hpp>

#include "crosvisor/error_bridge.hpp"
#include "process/open_as.hpp"
#include "process/proc_identity.hpp"
#include "protocol/stored_fleet.hpp"

namespace crosvisor::daemon {
namespace {

// The fleet a record describes, its files reopened as its owner.
Expected<config::FleetSpec> reopen(const store::FleetRecord& record) {
  auto files = protocol::files_named(record.fleet);
  if (!files)
    return std::unexpected(files.error());
  auto opened = process::open_as({record.owner_uid, record.owner_gid}, *files);
  if (!opened)
    return std::unexpected(opened.error());
  auto fleet = protocol::fleet_from_reopened(record.fleet, std::move(*opened));
  if (!fleet)
    return std::unexpected(fleet.error());
  for (auto& vm : fleet->vms)
    vm.spec.owner_uid = record.owner_uid;
  return fleet;
}

}  // namespace

RestoreSummary restore_fleets(caf::scoped_actor& self, const store::StateStore& state,
                              const FleetRegistryActor& fleets, const StateKeeperActor& keeper) {
  RestoreSummary summary;
  auto loaded = state.load();
  for (const auto& problem : loaded.problems)
    spdlog::error("state: {}", problem.what);
  const std::string boot = process::boot_id();
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
    self->request(fleets, std::chrono::seconds(60), fleet_up_atom::value, std::move(*fleet),
                  record.owner_uid, std::optional<store::FleetRecord>(record))
        .receive(
            [&](const FleetActor&) {
              spdlog::info("state: {} is coming up again{}", who,
                           record.persistent ? " (persistent)" : "");
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
