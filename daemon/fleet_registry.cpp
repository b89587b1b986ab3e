#include "daemon/fleet_registry.hpp"

#include <algorithm>
#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <map>
#include <set>

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
  StateKeeperActor keeper;
  bool live_restore = false;
  std::map<FleetKey, FleetEntry> fleets;
  // The records of the fleets up (and of persistent ones that are down), by owner and name.
  std::map<FleetKey, store::FleetRecord> records;
  std::map<FleetKey, std::vector<std::string>> starting;  // fleet ups being checked: members
  std::set<FleetKey> dropping;  // brought down: their records being deleted
  std::multimap<FleetKey, caf::typed_response_promise<bool>> settling;  // fleet_settled_atom
};

using Registry = FleetRegistryActor::stateful_pointer<RegistryState>;

// The fleet's actor has ended and its record is as it stays: those who wait for that hear it.
void settle(Registry self, const FleetKey& key) {
  auto& st = self->state;
  st.dropping.erase(key);
  auto [first, last] = st.settling.equal_range(key);
  for (auto it = first; it != last; ++it)
    it->second.deliver(true);
  st.settling.erase(first, last);
}

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

// Spawns the fleet (its record, if it has one, written).
FleetActor start_fleet(Registry self, const FleetKey& key, config::FleetSpec fleet,
                       std::vector<std::string> names, bool persistent, TakenOver taken_over) {
  auto& s = self->state;
  // A kept fleet's VMs outlive the daemon, with its networks (docs/state.md). VMMs a
  // live-restoring daemon left running are taken over even by a daemon that does not restore
  // live itself (they would run on unsupervised, or twice): its fleet is durable then too.
  FleetLife life;
  life.durable = s.keeper && s.records.count(key) != 0 && (s.live_restore || !taken_over.empty());
  life.takeover = std::move(taken_over.vms);
  life.network_takeover = std::move(taken_over.networks);
  auto actor = spawn_fleet(self->system(), s.service, std::move(fleet), std::move(life));
  self->monitor(actor);
  s.fleets[key] = FleetEntry{key.second, key.first, actor, std::move(names), persistent};
  return actor;
}

FleetRegistryActor::behavior_type registry_behavior(Registry self, ServiceActor service,
                                                    StateKeeperActor keeper, bool live_restore) {
  self->state.service = std::move(service);
  self->state.keeper = std::move(keeper);
  self->state.live_restore = live_restore;
  self->set_down_handler([=](const caf::down_msg& down) {
    auto& st = self->state;
    for (auto it = st.fleets.begin(); it != st.fleets.end(); ++it) {
      if (it->second.fleet.address() != down.source)
        continue;
      // Brought down (it quits normally then): a persistent fleet stays defined, to come up at
      // the next start; any other is forgotten. A fleet that ends with its actor system (the
      // daemon exits) keeps its record: it is taken over by the next daemon.
      const FleetKey key = it->first;
      const bool brought_down = down.reason == caf::exit_reason::normal;
      st.fleets.erase(it);
      auto record = st.records.find(key);
      if (brought_down && record != st.records.end() && !record->second.persistent) {
        st.records.erase(record);
        if (st.keeper) {
          st.dropping.insert(key);
          self->request(st.keeper, std::chrono::seconds(30), drop_fleet_atom::value, key.first,
                        key.second)
              .then([=](bool) { settle(self, key); }, [=](caf::error&) { settle(self, key); });
          return;
        }
      }
      settle(self, key);
      return;
    }
  });
  return {
      [=](fleet_up_atom, config::FleetSpec fleet, std::uint32_t uid,
          std::optional<store::FleetRecord> record,
          TakenOver taken_over) -> caf::result<FleetActor> {
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
                  if (!record || !s.keeper) {
                    promise.deliver(start_fleet(self, key, std::move(fleet), names, false,
                                                std::move(taken_over)));
                    return;
                  }
                  // Kept before its first VM starts: a daemon that dies a moment later still
                  // knows the fleet. The name stays taken while the write is under way.
                  s.starting[key] = names;
                  self->request(s.keeper, std::chrono::seconds(30), store_fleet_atom::value,
                                *record)
                      .then(
                          [=](bool) mutable {
                            self->state.starting.erase(key);
                            self->state.records[key] = *record;
                            promise.deliver(start_fleet(self, key, std::move(fleet), names,
                                                        record->persistent, std::move(taken_over)));
                          },
                          [=](caf::error& error) mutable {
                            self->state.starting.erase(key);
                            promise.deliver(std::move(error));
                          });
                },
                [=](caf::error& error) mutable {
                  self->state.starting.erase(key);
                  promise.deliver(std::move(error));
                });
        return promise;
      },
      [=](fleet_settled_atom, std::uint32_t owner, const std::string& name) -> caf::result<bool> {
        auto& st = self->state;
        const FleetKey key{owner, name};
        if (st.fleets.count(key) == 0 && st.dropping.count(key) == 0)
          return true;
        auto promise = self->make_response_promise<bool>();
        st.settling.emplace(key, promise);
        return promise;
      },
      [=](fleet_forget_atom, std::uint32_t caller, const std::string& name,
          bool any_owner) -> caf::result<bool> {
        auto& st = self->state;
        const auto persistent = [&](const auto& entry) {
          return entry.first.second == name && entry.second.persistent;
        };
        auto record = st.records.find(FleetKey{caller, name});
        if (any_owner && (record == st.records.end() || !record->second.persistent)) {
          if (std::count_if(st.records.begin(), st.records.end(), persistent) > 1)
            return to_caf_error(
                ErrorKind::conflict,
                "several users have a persistent fleet named " + name + ": forget it as its owner");
          record = std::find_if(st.records.begin(), st.records.end(), persistent);
        }
        if (record == st.records.end() || !record->second.persistent)
          return to_caf_error(ErrorKind::not_found,
                              "no persistent fleet named " + name + " of yours");
        const FleetKey key = record->first;
        const std::uint32_t owner = key.first;
        auto running = st.fleets.find(key);
        auto promise = self->make_response_promise<bool>();
        if (running == st.fleets.end()) {
          // Answered once its record is gone from disk: a daemon started right after the
          // answer must not bring it up.
          st.records.erase(record);
          self->request(st.keeper, std::chrono::seconds(30), drop_fleet_atom::value, owner, name)
              .then([=](bool) mutable { promise.deliver(true); },
                    [=](caf::error& error) mutable { promise.deliver(std::move(error)); });
          return promise;
        }
        // Up: it runs on as a fleet of this daemon's life, and is forgotten when brought down.
        running->second.persistent = false;
        record->second.persistent = false;
        self->request(st.keeper, std::chrono::seconds(30), store_fleet_atom::value, record->second)
            .then([=](bool) mutable { promise.deliver(true); },
                  [=](caf::error& error) mutable { promise.deliver(std::move(error)); });
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

FleetRegistryActor spawn_fleet_registry(caf::actor_system& system, ServiceActor service,
                                        StateKeeperActor keeper, bool live_restore) {
  return system.spawn(registry_behavior, std::move(service), std::move(keeper), live_restore);
}

}  // namespace crosvisor::daemon
