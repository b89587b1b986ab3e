#include "actors/state_keeper.hpp"

#include <spdlog/spdlog.h>

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <filesystem>

#include "crosvisor/error_bridge.hpp"

namespace crosvisor {
namespace {

StateKeeperActor::behavior_type keeper(StateKeeperActor::pointer self,
                                       std::shared_ptr<const store::StateStore> state) {
  return {
      [=](store_fleet_atom, const store::FleetRecord& record) -> caf::result<bool> {
        if (auto saved = state->save(record); !saved) {
          spdlog::error("state: fleet {}: {}", record.name, saved.error().message);
          return to_caf_error(ErrorKind::io, "the state store cannot keep fleet " + record.name +
                                                 ": " + saved.error().message);
        }
        return true;
      },
      [=](drop_fleet_atom, std::uint32_t owner, const std::string& fleet) -> caf::result<bool> {
        std::error_code ec;
        const bool existed = std::filesystem::exists(state->fleet_file(owner, fleet), ec);
        if (auto removed = state->remove_fleet(owner, fleet); !removed) {
          spdlog::error("state: fleet {}: {}", fleet, removed.error().message);
          return to_caf_error(removed.error());
        }
        return existed;
      },
      [=](store_vm_atom, const store::VmRecord& record) {
        if (auto saved = state->save(record); !saved)
          spdlog::error("state: VM {}: {} (it will not be taken over after a restart)", record.name,
                        saved.error().message);
      },
      [=](drop_vm_atom, std::uint32_t owner, const std::string& vm) {
        if (auto removed = state->remove_vm(owner, vm); !removed)
          spdlog::error("state: VM {}: {}", vm, removed.error().message);
      },
      [=](store_network_atom, const store::NetworkRecord& record) {
        if (auto saved = state->save(record); !saved)
          spdlog::error("state: network {}: {} (it will be made anew after a restart)", record.name,
                        saved.error().message);
      },
      [=](drop_network_atom, std::uint32_t owner, const std::string& network) {
        if (auto removed = state->remove_network(owner, network); !removed)
          spdlog::error("state: network {}: {}", network, removed.error().message);
      },
      [=](flush_atom) { return true; },
      [=](finish_atom) { self->quit(); },
  };
}

}  // namespace

StateKeeperActor spawn_state_keeper(caf::actor_system& system,
                                    std::shared_ptr<const store::StateStore> store) {
  return system.spawn<caf::detached>(keeper, std::move(store));
}

}  // namespace crosvisor
