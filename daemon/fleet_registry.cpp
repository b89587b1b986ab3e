#include "daemon/fleet_registry.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <map>

#include "actors/fleet_actor.hpp"
#include "crosvisor/messages.hpp"

namespace crosvisor::daemon {
namespace {

struct RegistryState {
  static inline const char* name = "crosvisor.fleet_registry";
  caf::actor service;
  std::map<std::string, FleetEntry> fleets;
};

using Registry = caf::stateful_actor<RegistryState>;

caf::behavior registry_behavior(Registry* self, caf::actor service) {
  self->state.service = std::move(service);
  self->set_down_handler([=](const caf::down_msg& down) {
    auto& fleets = self->state.fleets;
    for (auto it = fleets.begin(); it != fleets.end(); ++it) {
      if (it->second.fleet.address() == down.source) {
        fleets.erase(it);
        return;
      }
    }
  });
  return {
      [=](fleet_up_atom, config::FleetSpec fleet, std::uint32_t uid) -> caf::result<caf::actor> {
        auto& st = self->state;
        if (st.fleets.count(fleet.name) != 0) {
          return caf::make_error(caf::sec::runtime_error,
                                 "a fleet named '" + fleet.name + "' is already up");
        }
        const std::string name = fleet.name;
        auto actor = spawn_fleet(self->system(), st.service, std::move(fleet));
        self->monitor(actor);
        st.fleets[name] = FleetEntry{name, uid, actor};
        return actor;
      },
      [=](list_atom) {
        std::vector<FleetEntry> entries;
        for (const auto& [name, entry] : self->state.fleets)
          entries.push_back(entry);
        return entries;
      },
  };
}

}  // namespace

caf::actor spawn_fleet_registry(caf::actor_system& system, caf::actor service) {
  return system.spawn(registry_behavior, std::move(service));
}

}  // namespace crosvisor::daemon
