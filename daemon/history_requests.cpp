// A session's requests about what happened: dead VMs the daemon remembers (info and logs of one,
// remove), and the stream of every VM's events (events). The service keeps both
// (crosvisor/messages.hpp: history_atom, watch_atom); the session filters them by who may see
// what, as it filters the living.
#include <algorithm>
#include <caf/event_based_actor.hpp>

#include "crosvisor/error_bridge.hpp"
#include "crosvisor/messages.hpp"
#include "daemon/session_state.hpp"

namespace crosvisor::daemon {

using json = nlohmann::json;

void find_dead(Session* self, const protocol::Target& target,
               std::function<void(std::optional<VmInfo>)> done) {
  self->request(self->state.context.service, std::chrono::seconds(10), history_atom::value)
      .then(
          [=](const std::vector<VmInfo>& dead) {
            // A CID names no dead VM: it went back to the pool.
            std::optional<VmInfo> found;
            for (const auto& info : dead) {
              if (!target.cid && info.name == target.text &&
                  self->state.may_act_on(info.owner_uid) &&
                  (!found || info.owner_uid == self->state.peer.uid))
                found = info;
            }
            done(std::move(found));
          },
          [=](caf::error&) { done(std::nullopt); });
}

namespace {

bool wanted(const SessionState& st, const SupervisorEvent& event) {
  if (!st.events)
    return false;
  const bool own = event.owner && *event.owner == st.peer.uid;
  if (!own && !(st.events->all_users && st.may_see_all()))
    return false;
  const auto& names = st.events->names;
  return names.empty() || std::find(names.begin(), names.end(), event.event.vm) != names.end();
}

}  // namespace

void forward_event(Session* self, const SupervisorEvent& event) {
  if (wanted(self->state, event))
    self->state.reply(protocol::supervisor_event(event));
}

void handle(Session* self, std::uint64_t id, const protocol::RemoveRequest& request) {
  const auto target = request.vm;
  with_target(
      self, id, target,
      [=](const FoundVm& vm) {
        self->state.fail(id, ErrorKind::state,
                         "VM " + vm.info.name + " is " + std::string(to_string(vm.info.state)) +
                             ": stop it first (vm stop " + vm.info.name + ")");
      },
      [=] {
        find_dead(self, target, [=](std::optional<VmInfo> dead) {
          if (!dead)
            return not_found(self, id, target);
          self->request(self->state.context.service, std::chrono::seconds(10), forget_atom::value,
                        dead->owner_uid, dead->name)
              .then(
                  [=](bool) {
                    json reply = protocol::ok_reply(id);
                    reply["vm"] = dead->name;
                    self->state.reply(std::move(reply));
                  },
                  [=](caf::error& error) { self->state.fail(id, from_caf_error(error)); });
        });
      });
}

void handle(Session* self, std::uint64_t id, const protocol::EventsRequest& request) {
  auto& st = self->state;
  if (request.all_users && !st.may_see_all()) {
    return st.fail(id, ErrorKind::permission,
                   "every user's events need root or the daemon's own user");
  }
  if (st.events)
    return st.fail(id, ErrorKind::conflict, "this session already streams events");
  st.events = SessionState::EventFilter{request.names, request.all_users};
  const auto since = request.since_ms;
  self->request(st.context.service, std::chrono::seconds(10), watch_atom::value,
                caf::actor_cast<caf::actor>(self))
      .then(
          [=](const std::vector<SupervisorEvent>& remembered) {
            // The reply first, then what the daemon remembers from `since` on, then the rest as
            // it comes (the service sends new ones only after this reply).
            self->state.reply(protocol::ok_reply(id));
            if (!since)
              return;
            for (const auto& event : remembered) {
              if (event.at_ms >= static_cast<std::int64_t>(*since))
                forward_event(self, event);
            }
          },
          [=](caf::error& error) {
            self->state.events.reset();
            self->state.fail(id, from_caf_error(error));
          });
}

}  // namespace crosvisor::daemon
