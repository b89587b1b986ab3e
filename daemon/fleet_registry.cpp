#include "daemon/fleet_registry.hpp"

#include <algorithm>
#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <map>

#include "actors/fleet_actor.hpp"
#include "crosvisor/error_bridge.hpp"
#include "crosvisor/messages.hpp"

namespace crosvisor::daemon {
namespace {

using FleetKey = std::pair<std::uint32_t, std::string>;  // owner, name

struct RegistryState {
  static inline const char* name = "crosvisor.fleet_registry";
  // Not an aggregate: CAF builds a state from the actor's pointer whenever it can, and C++20
  // would let that pointer initialise the first member, a typed handle.
  RegistryState() = default;
  ServiceActor service;
  std::map<FleetKey, FleetEntry> fleets;
  std::map<FleetKey, std::vector<std::string>> starting;  // fleet ups being checked: members
};

using Registry = FleetRegistryActor::stateful_pointer<RegistryState>;

// "web-0, web-1 (fleet shop) and db": which fleet of the owner holds each taken name.
std::string describe_taken(const RegistryState& st, std::uint32_t owner,
                           const std::vector<std::string>& taken) {
  std::string text;
  for (std::size_t i = 0; i < taken.size(); ++i) {
    if (i > 0)
      text += i + 1 == taken.size() ? " and " : ", ";
    text += taken[i];
    for (const auto& [key, entry] : st.fleets) {
      if (key.first == owner &&
          std::find(entry.members.begin(), entry.members.end(), taken[i]) != entry.members.end())
        text += " (fleet " + entry.name + ")";
    }
  }
  return text;
}

FleetRegistryActor::behavior_type registry_behavior(Registry self, ServiceActor service) {
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
      [=](fleet_up_atom, config::FleetSpec fleet, std::uint32_t uid) -> caf::result<FleetActor> {
        auto& st = self->state;
        const FleetKey key{uid, fleet.name};
        if (st.fleets.count(key) != 0 || st.starting.count(key) != 0) {
          return to_caf_error(ErrorKind::conflict,
                              "a fleet named '" + fleet.name + "' is already up");
        }
        std::vector<std::string> names;
        for (const auto& vm : fleet.vms)
          names.push_back(vm.spec.name);
        for (const auto& [other, members] : st.starting) {
          for (const auto& name : names) {
            if (other.first == uid &&
                std::find(members.begin(), members.end(), name) != members.end())
              return to_caf_error(ErrorKind::conflict, "fleet " + fleet.name + ": " + name +
                                                           " is starting in fleet " + other.second +
                                                           "; nothing was started");
          }
        }
        st.starting[key] = names;
        auto promise = self->make_response_promise<FleetActor>();
        // Every member's name must be free: a fleet that could start only some of its VMs would
        // run half-started, waiting for the others forever.
        self->request(st.service, std::chrono::seconds(10), taken_atom::value, uid, names)
            .then(
                [=](const std::vector<std::string>& taken) mutable {
                  auto& s = self->state;
                  s.starting.erase(key);
                  if (!taken.empty()) {
                    promise.deliver(to_caf_error(ErrorKind::conflict,
                                                 "fleet " + fleet.name + ": " +
                                                     describe_taken(s, uid, taken) +
                                                     (taken.size() == 1 ? " is" : " are") +
                                                     " already running; nothing was started"));
                    return;
                  }
                  auto actor = spawn_fleet(self->system(), s.service, std::move(fleet));
                  self->monitor(actor);
                  s.fleets[key] = FleetEntry{key.second, uid, actor, names};
                  promise.deliver(actor);
                },
                [=](caf::error& error) mutable {
                  self->state.starting.erase(key);
                  promise.deliver(std::move(error));
                });
        return promise;
      },
      [=](list_atom) {
        std::vector<FleetEntry> entries;
        for (const auto& [key, entry] : self->state.fleets)
          entries.push_back(entry);
        return entries;
      },
  };
}

}  // namespace

FleetRegistryActor spawn_fleet_registry(caf::actor_system& system, ServiceActor service) {
  return system.spawn(registry_behavior, std::move(service));
}

}  // namespace crosvisor::daemon
