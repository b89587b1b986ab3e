// A session's fleet requests: fleet_up, fleet_status, fleet_down, fleet_restart.
#include <algorithm>
#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>

#include "actors/fleet_actor.hpp"
#include "core/unix_time.hpp"
#include "crosvisor/error_bridge.hpp"
#include "crosvisor/messages.hpp"
#include "daemon/fleet_registry.hpp"
#include "daemon/session_state.hpp"
#include "process/proc_identity.hpp"
#include "protocol/fleet_json.hpp"

namespace crosvisor::daemon {
namespace {

using json = nlohmann::json;

template <class T>
json or_null(const std::optional<T>& value) {
  return value ? json(*value) : json(nullptr);
}

json member_json(const FleetMemberStatus& vm) {
  return {{"name", vm.name},
          {"state", to_string(vm.state)},
          {"up", vm.up},
          {"restarts", vm.restarts},
          {"failed", vm.failed},
          {"blocked", vm.blocked},
          {"problem", vm.problem.empty() ? json(nullptr) : json(vm.problem)},
          {"cid", or_null(vm.cid)},
          {"pid", or_null(vm.pid)},
          {"last_death", vm.last_death ? json(to_string(*vm.last_death)) : json(nullptr)}};
}

json status_json(const FleetStatus& status, bool persistent = false) {
  json vms = json::array();
  for (const auto& vm : status.vms)
    vms.push_back(member_json(vm));
  return {{"name", status.name},     {"total", status.vms.size()}, {"ready", status.ready},
          {"failed", status.failed}, {"blocked", status.blocked},  {"persistent", persistent},
          {"vms", std::move(vms)}};
}

// The fleets this client may see (its own; every one for root, or with `all_users` for root and
// the daemon's user), then `act`.
void with_fleets(Session* self, std::uint64_t id, const std::string& name, bool all,
                 std::function<void(std::vector<FleetEntry>)> act) {
  if (all && !self->state.may_see_all())
    return self->state.fail(id, ErrorKind::permission,
                            "listing every user's fleets needs root or the daemon's own user");
  self->request(self->state.context.fleets, std::chrono::seconds(10), list_atom::value)
      .then(
          [=](const std::vector<FleetEntry>& entries) {
            const uid_t uid = self->state.peer.uid;
            std::vector<FleetEntry> visible;
            for (const auto& entry : entries) {
              const bool own = entry.owner_uid == uid;
              if ((all || own || uid == 0) && (name.empty() || entry.name == name))
                visible.push_back(entry);
            }
            // Root's own fleet first, when several users have one of that name.
            std::stable_sort(visible.begin(), visible.end(), [&](const auto& a, const auto& b) {
              return (a.owner_uid == uid) > (b.owner_uid == uid);
            });
            act(std::move(visible));
          },
          [=](caf::error& error) { self->state.fail(id, from_caf_error(error)); });
}

// The one fleet a request names, or the refusal.
void with_fleet(Session* self, std::uint64_t id, const std::string& name,
                std::function<void(const FleetEntry&)> act) {
  with_fleets(self, id, name, false, [=](std::vector<FleetEntry> fleets) {
    if (fleets.empty())
      return self->state.fail(id, ErrorKind::not_found, "no fleet named " + name + " of yours");
    act(fleets.front());
  });
}

// Brings one fleet down as the request says (gracefully, within its timeout, or killed).
// Answered once the fleet's record is deleted too (a daemon killed just after the answer does
// not bring the fleet back); after 10 s without that, answered all the same.
void bring_down(Session* self, const FleetEntry& fleet, const protocol::FleetDownRequest& request,
                std::function<void(const FleetStatus&)> done,
                std::function<void(caf::error&)> failed) {
  const auto down = [=](const FleetStatus& status) {
    self->request(self->state.context.fleets, std::chrono::seconds(10), fleet_settled_atom::value,
                  fleet.owner_uid, fleet.name)
        .then([=](bool) { done(status); }, [=](caf::error&) { done(status); });
  };
  if (request.force)
    self->request(fleet.fleet, caf::infinite, stop_atom::value, kill_atom::value)
        .then(down, failed);
  else if (request.timeout_ms)
    self->request(fleet.fleet, caf::infinite, stop_atom::value, *request.timeout_ms)
        .then(down, failed);
  else
    self->request(fleet.fleet, caf::infinite, stop_atom::value).then(down, failed);
}

// Asks each fleet (`ask` calls `done` with its status, or `failed`) and replies with every status
// that came, sorted by name: {"fleets": [...]}, each with its owner and whether it persists.
using AskFleet = std::function<void(const FleetEntry&, std::function<void(const FleetStatus&)>,
                                    std::function<void(caf::error&)>)>;
void gather(Session* self, std::uint64_t id, std::vector<FleetEntry> fleets, AskFleet ask) {
  auto gathered = std::make_shared<std::vector<json>>();
  auto waiting = std::make_shared<std::size_t>(fleets.size());
  const auto finish = [=] {
    json reply = protocol::ok_reply(id);
    std::sort(gathered->begin(), gathered->end(),
              [](const json& a, const json& b) { return a["name"] < b["name"]; });
    reply["fleets"] = *gathered;
    self->state.reply(std::move(reply));
  };
  if (fleets.empty())
    return finish();
  for (const auto& entry : fleets) {
    const auto owner = entry.owner_uid;
    const bool persistent = entry.persistent;
    ask(
        entry,
        [=](const FleetStatus& status) {
          json fleet = status_json(status, persistent);
          fleet["owner_uid"] = owner;
          gathered->push_back(std::move(fleet));
          if (--*waiting == 0)
            finish();
        },
        [=](caf::error&) {
          if (--*waiting == 0)
            finish();
        });
  }
}

}  // namespace

// What the state store keeps of a daemon-owned fleet: the message as it came, its owner.
store::FleetRecord record_of(const Session* self, const protocol::FleetUpRequest& request,
                             const std::string& name) {
  store::FleetRecord record;
  record.name = name;
  record.owner_uid = self->state.peer.uid;
  record.owner_gid = self->state.peer.gid;
  record.persistent = request.persist;
  record.boot_id = process::boot_id();
  record.created_at_ms = unix_now_ms();
  record.fleet = request.fleet;
  return record;
}

void handle(Session* self, std::uint64_t id, const protocol::FleetUpRequest& request,
            std::vector<UniqueFd> fds) {
  if (request.cluster)
    return handle_cluster(self, id, request, std::move(fds));
  if (request.persist && request.foreground)
    return self->state.fail(id, ErrorKind::invalid_config,
                            "a fleet held in the foreground cannot be persistent");
  if (request.persist && !self->state.context.keeps_state)
    return self->state.fail(id, ErrorKind::state,
                            "this crosvisord has no state store: nothing can persist");
  auto fleet = protocol::fleet_from_message(request.fleet, std::move(fds));
  if (!fleet)
    return self->state.fail(id, fleet.error());
  for (auto& vm : fleet->vms) {
    if (auto refused = check_vmm_binary(self, vm.spec))
      return self->state.fail(id, *refused);
    vm.spec.owner_uid = self->state.peer.uid;
  }
  const std::string name = fleet->name;
  const bool foreground = request.foreground;
  const bool persist = request.persist;
  std::optional<store::FleetRecord> record;
  if (!foreground && self->state.context.keeps_state)
    record = record_of(self, request, name);
  self->request(self->state.context.fleets, std::chrono::seconds(30), fleet_up_atom::value,
                std::move(*fleet), static_cast<std::uint32_t>(self->state.peer.uid),
                std::move(record), TakenOver())
      .then(
          [=](FleetActor fleet_actor) {
            if (foreground) {
              // Held by this session: its members' state changes are the client's to show.
              self->state.foreground_fleets.push_back(fleet_actor);
              self->send(fleet_actor, subscribe_atom::value, caf::actor_cast<caf::actor>(self));
            }
            json reply = protocol::ok_reply(id);
            reply["fleet"] = name;
            reply["persistent"] = persist;
            self->state.reply(std::move(reply));
          },
          [=](caf::error& error) { self->state.fail(id, from_caf_error(error)); });
}

void handle(Session* self, std::uint64_t id, const protocol::FleetStatusRequest& request) {
  if (request.cluster)
    return handle_cluster(self, id, request);
  const std::string name = request.fleet;
  with_fleets(self, id, name, request.all_users, [=](std::vector<FleetEntry> fleets) {
    if (!name.empty() && fleets.empty())
      return self->state.fail(id, ErrorKind::not_found, "no fleet named " + name + " of yours");
    gather(self, id, std::move(fleets),
           [=](const FleetEntry& entry, std::function<void(const FleetStatus&)> done,
               std::function<void(caf::error&)> failed) {
             self->request(entry.fleet, std::chrono::seconds(10), fleet_status_atom::value)
                 .then(done, failed);
           });
  });
}

void handle(Session* self, std::uint64_t id, const protocol::FleetDownRequest& request) {
  if (request.cluster)
    return handle_cluster(self, id, request);
  if (request.all) {
    // Every fleet at once: a host going down gives each guest the same time to power off.
    with_fleets(self, id, "", request.all_users, [=](std::vector<FleetEntry> fleets) {
      gather(self, id, std::move(fleets),
             [=](const FleetEntry& fleet, std::function<void(const FleetStatus&)> done,
                 std::function<void(caf::error&)> failed) {
               bring_down(self, fleet, request, std::move(done), std::move(failed));
             });
    });
    return;
  }
  with_fleet(self, id, request.fleet, [=](const FleetEntry& fleet) {
    bring_down(
        self, fleet, request,
        [=](const FleetStatus& status) {
          json reply = protocol::ok_reply(id);
          reply["fleet"] = status_json(status, fleet.persistent);
          self->state.reply(std::move(reply));
        },
        [=](caf::error& error) { self->state.fail(id, from_caf_error(error)); });
  });
}

void handle(Session* self, std::uint64_t id, const protocol::FleetRestartRequest& request) {
  const std::string vm = request.vm.text;
  with_fleet(self, id, request.fleet, [=](const FleetEntry& fleet) {
    // Answered once the VM is up again, or has failed: `vm fleet restart` waits, as `vm stop`.
    self->request(fleet.fleet, caf::infinite, restart_atom::value, vm)
        .then(
            [=](const FleetMemberStatus& member) {
              json reply = protocol::ok_reply(id);
              reply["vm"] = member_json(member);
              self->state.reply(std::move(reply));
            },
            [=](caf::error& error) { self->state.fail(id, from_caf_error(error)); });
  });
}

void handle(Session* self, std::uint64_t id, const protocol::FleetForgetRequest& request) {
  const std::string name = request.fleet;
  self->request(self->state.context.fleets, std::chrono::seconds(30), fleet_forget_atom::value,
                static_cast<std::uint32_t>(self->state.peer.uid), name, self->state.peer.uid == 0)
      .then(
          [=](bool) {
            json reply = protocol::ok_reply(id);
            reply["fleet"] = name;
            self->state.reply(std::move(reply));
          },
          [=](caf::error& error) { self->state.fail(id, from_caf_error(error)); });
}

}  // namespace crosvisor::daemon
