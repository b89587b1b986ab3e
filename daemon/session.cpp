#include "daemon/session.hpp"

#include <spdlog/spdlog.h>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <map>

#include "actors/fleet_actor.hpp"
#include "crosvisor/messages.hpp"
#include "daemon/fleet_registry.hpp"
#include "protocol/fleet_json.hpp"
#include "protocol/spec_json.hpp"

namespace crosvisor::daemon {

// A request and the fds that came with it, as one actor message.
struct RequestEnvelope {
  protocol::Request request;
  std::shared_ptr<std::vector<UniqueFd>> fds;
};

}  // namespace crosvisor::daemon

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::daemon::RequestEnvelope)

namespace crosvisor::daemon {
namespace {

using json = nlohmann::json;
using request_atom = caf::atom_constant<caf::atom("request")>;
using closed_atom = caf::atom_constant<caf::atom("closed")>;

struct FoundVm {
  caf::actor actor;  // the VM's own actor, not a handle
  VmInfo info;
};

struct SessionState {
  static inline const char* name = "crosvisor.session";
  std::shared_ptr<ConnectionPort> connection;
  PeerCredentials peer;
  SessionContext context;
  std::map<std::string, caf::actor> handles;  // the VMs this client created: they die with it
  std::map<std::string, VmState> forwarded;   // the last state sent per VM, to drop repeats
  std::multimap<std::string, std::uint64_t> stop_waiters;  // answered when the VM is dead
  std::vector<caf::actor> foreground_fleets;               // they go down with this session
  std::map<caf::actor_addr, std::string> watched;  // VMs stopped or followed, by their actor

  void reply(json message) { connection->send(std::move(message)); }
  void fail(std::uint64_t id, const std::string& why) {
    connection->send(protocol::error_reply(id, why));
  }
};

using Session = caf::stateful_actor<SessionState>;

// Every VM of the service with its info, then `done` (on the session's thread).
void gather_vms(Session* self, std::function<void(std::vector<FoundVm>)> done) {
  self->request(self->state.context.service, std::chrono::seconds(10), list_atom::value)
      .then(
          [=](const std::vector<caf::actor>& vms) {
            struct Gathering {
              std::vector<FoundVm> found;
              std::size_t waiting = 0;
              std::function<void(std::vector<FoundVm>)> done;
            };
            auto gathering = std::make_shared<Gathering>();
            gathering->waiting = vms.size();
            gathering->done = done;
            if (vms.empty())
              return done({});
            for (const auto& vm : vms) {
              const auto finish_one = [gathering] {
                if (--gathering->waiting == 0)
                  gathering->done(std::move(gathering->found));
              };
              self->request(vm, std::chrono::seconds(10), info_atom::value)
                  .then(
                      [=](const VmInfo& info) {
                        gathering->found.push_back(FoundVm{vm, info});
                        finish_one();
                      },
                      [=](caf::error&) { finish_one(); });  // it went away meanwhile
            }
          },
          [=](caf::error& error) {
            done({});
            spdlog::warn("list: {}", self->system().render(error));
          });
}

bool owned_by(const VmInfo& info, uid_t uid) {
  return info.owner_uid && *info.owner_uid == uid;
}

// The one VM a request names, if this client may act on it; otherwise the reply is sent.
void with_target(Session* self, const protocol::Request& request,
                 std::function<void(const FoundVm&)> act) {
  const auto id = request.id;
  const auto target = request.target;
  gather_vms(self, [=](std::vector<FoundVm> vms) {
    const uid_t uid = self->state.peer.uid;
    for (const auto& vm : vms) {
      if (target.matches(vm.info) && (owned_by(vm.info, uid) || uid == 0))
        return act(vm);
    }
    // Another user's VM is reported exactly like one that does not exist.
    self->state.fail(id, "no VM " + std::string(target.cid ? "with CID " : "named ") + target.name +
                             " of yours");
  });
}

void forward_state(Session* self, const VmEvent& event) {
  auto& st = self->state;
  auto last = st.forwarded.find(event.vm);
  if (last != st.forwarded.end() && last->second == event.state)
    return;  // the same event by a handle and by a subscription
  st.forwarded[event.vm] = event.state;
  st.reply(protocol::state_event(event));
  if (event.state != VmState::dead)
    return;
  st.forwarded.erase(event.vm);
  auto [first, last_waiter] = st.stop_waiters.equal_range(event.vm);
  for (auto it = first; it != last_waiter; ++it) {
    json reply = protocol::ok_reply(it->second);
    reply["state"] = "dead";
    reply["reason"] = std::string(to_string(event.reason.value_or(DeathReason::unknown)));
    reply["detail"] = event.detail;
    st.reply(std::move(reply));
  }
  st.stop_waiters.erase(first, last_waiter);
  // A dead VM's handle would keep its CID taken for as long as this session lasts.
  st.handles.erase(event.vm);
}

void watch(Session* self, const FoundVm& vm) {
  if (self->state.watched.emplace(vm.actor.address(), vm.info.name).second)
    self->monitor(vm.actor);
}

// A watched VM's actor is gone (the VM is dead and nobody holds it). If its `dead` event never
// reached us (we subscribed too late), say it now, so that nobody waits for it forever.
void on_vm_gone(Session* self, const caf::down_msg& down) {
  auto& st = self->state;
  auto it = st.watched.find(down.source);
  if (it == st.watched.end())
    return;
  const std::string name = it->second;
  st.watched.erase(it);
  const bool pending = st.stop_waiters.count(name) != 0 || st.forwarded.count(name) != 0;
  if (pending) {
    VmEvent gone;
    gone.vm = name;
    gone.state = VmState::dead;
    gone.detail = "the VM is gone";
    forward_state(self, gone);
  }
}

void handle_create(Session* self, const protocol::Request& request, std::vector<UniqueFd> fds) {
  const auto id = request.id;
  auto spec = protocol::spec_from_message(request.vm, std::move(fds));
  if (!spec)
    return self->state.fail(id, spec.error().message);
  spec->owner_uid = self->state.peer.uid;
  const std::string name = spec->name;
  self->request(self->state.context.service, std::chrono::seconds(30), create_atom::value,
                std::move(*spec), caf::actor_cast<caf::actor>(self))
      .then(
          [=](caf::actor handle) {
            self->state.handles[name] = std::move(handle);
            json reply = protocol::ok_reply(id);
            reply["vm"] = name;
            self->state.reply(std::move(reply));
          },
          [=](caf::error& error) { self->state.fail(id, self->system().render(error)); });
}

void handle_list(Session* self, const protocol::Request& request) {
  const auto id = request.id;
  const uid_t uid = self->state.peer.uid;
  if (request.all && uid != 0 && uid != self->state.context.daemon_uid) {
    return self->state.fail(id, "listing every VM needs root or the daemon's own user");
  }
  const bool all = request.all;
  gather_vms(self, [=](std::vector<FoundVm> vms) {
    std::sort(vms.begin(), vms.end(),
              [](const FoundVm& a, const FoundVm& b) { return a.info.name < b.info.name; });
    json listed = json::array();
    for (const auto& vm : vms) {
      if (all || owned_by(vm.info, uid))
        listed.push_back(protocol::info_json(vm.info));
    }
    json reply = protocol::ok_reply(id);
    reply["vms"] = std::move(listed);
    self->state.reply(std::move(reply));
  });
}

void handle_stop(Session* self, const protocol::Request& request) {
  const auto id = request.id;
  const bool force = request.force;
  const auto timeout = request.timeout_ms;
  with_target(self, request, [=](const FoundVm& vm) {
    if (vm.info.state == VmState::dead) {
      json reply = protocol::ok_reply(id);
      reply["state"] = "dead";
      return self->state.reply(std::move(reply));
    }
    // Answered when the VM is dead: subscribe to hear it, whoever holds it, and watch its actor
    // in case it is gone before the subscription arrives.
    self->state.stop_waiters.emplace(vm.info.name, id);
    watch(self, vm);
    self->send(vm.actor, subscribe_atom::value, caf::actor_cast<caf::actor>(self));
    if (force) {
      self->send(vm.actor, stop_atom::value, kill_atom::value);
    } else if (timeout) {
      self->send(vm.actor, stop_atom::value, *timeout);
    } else {
      self->send(vm.actor, stop_atom::value);
    }
  });
}

void handle_logs(Session* self, const protocol::Request& request) {
  const auto id = request.id;
  const auto lines = request.lines;
  const bool follow = request.follow;
  with_target(self, request, [=](const FoundVm& vm) {
    self->request(vm.actor, std::chrono::seconds(10), logs_atom::value, lines)
        .then(
            [=](const std::vector<std::string>& tail) {
              json reply = protocol::ok_reply(id);
              reply["lines"] = tail;
              self->state.reply(std::move(reply));
              if (follow) {
                self->state.forwarded[vm.info.name] = vm.info.state;
                watch(self, vm);
                self->send(vm.actor, subscribe_atom::value, caf::actor_cast<caf::actor>(self));
              }
            },
            [=](caf::error& error) { self->state.fail(id, self->system().render(error)); });
  });
}

json status_json(const FleetStatus& status) {
  json vms = json::array();
  for (const auto& vm : status.vms) {
    json entry = {{"name", vm.name},         {"state", std::string(to_string(vm.state))},
                  {"restarts", vm.restarts}, {"failed", vm.failed},
                  {"cid", vm.cid},           {"pid", vm.pid}};
    if (vm.last_death)
      entry["last_death"] = std::string(to_string(*vm.last_death));
    vms.push_back(std::move(entry));
  }
  return {{"name", status.name},
          {"total", status.vms.size()},
          {"ready", status.ready},
          {"failed", status.failed},
          {"vms", std::move(vms)}};
}

void handle_fleet_up(Session* self, const protocol::Request& request, std::vector<UniqueFd> fds) {
  const auto id = request.id;
  auto fleet = protocol::fleet_from_message(request.fleet, std::move(fds));
  if (!fleet)
    return self->state.fail(id, fleet.error().message);
  for (auto& vm : fleet->vms)
    vm.spec.owner_uid = self->state.peer.uid;
  const std::string name = fleet->name;
  const bool foreground = request.foreground;
  self->request(self->state.context.fleets, std::chrono::seconds(30), fleet_up_atom::value,
                std::move(*fleet), static_cast<std::uint32_t>(self->state.peer.uid))
      .then(
          [=](caf::actor fleet_actor) {
            if (foreground)
              self->state.foreground_fleets.push_back(fleet_actor);
            json reply = protocol::ok_reply(id);
            reply["fleet"] = name;
            self->state.reply(std::move(reply));
          },
          [=](caf::error& error) { self->state.fail(id, self->system().render(error)); });
}

// The fleets this client may see (its own; every one for root, or with `all` for root and the
// daemon's user), then `act`.
void with_fleets(Session* self, const protocol::Request& request,
                 std::function<void(std::vector<FleetEntry>)> act) {
  const auto id = request.id;
  const uid_t uid = self->state.peer.uid;
  const bool all = request.all;
  if (all && uid != 0 && uid != self->state.context.daemon_uid)
    return self->state.fail(id, "listing every fleet needs root or the daemon's own user");
  const std::string name = request.fleet_name;
  self->request(self->state.context.fleets, std::chrono::seconds(10), list_atom::value)
      .then(
          [=](const std::vector<FleetEntry>& entries) {
            std::vector<FleetEntry> visible;
            for (const auto& entry : entries) {
              if ((all || entry.owner_uid == uid || uid == 0) &&
                  (name.empty() || entry.name == name))
                visible.push_back(entry);
            }
            act(std::move(visible));
          },
          [=](caf::error& error) { self->state.fail(id, self->system().render(error)); });
}

void handle_fleet_status(Session* self, const protocol::Request& request) {
  const auto id = request.id;
  const std::string name = request.fleet_name;
  with_fleets(self, request, [=](std::vector<FleetEntry> fleets) {
    if (!name.empty() && fleets.empty())
      return self->state.fail(id, "no fleet named " + name + " of yours");
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
      self->request(entry.fleet, std::chrono::seconds(10), fleet_status_atom::value)
          .then(
              [=](const FleetStatus& status) {
                gathered->push_back(status_json(status));
                if (--*waiting == 0)
                  finish();
              },
              [=](caf::error&) {
                if (--*waiting == 0)
                  finish();
              });
    }
  });
}

void handle_fleet_down(Session* self, const protocol::Request& request) {
  const auto id = request.id;
  const std::string name = request.fleet_name;
  const auto timeout = request.timeout_ms;
  with_fleets(self, request, [=](std::vector<FleetEntry> fleets) {
    if (fleets.empty())
      return self->state.fail(id, "no fleet named " + name + " of yours");
    const auto handle_status = [=](const FleetStatus& status) {
      json reply = protocol::ok_reply(id);
      reply["fleet"] = status_json(status);
      self->state.reply(std::move(reply));
    };
    const auto handle_error = [=](caf::error& error) {
      self->state.fail(id, self->system().render(error));
    };
    if (timeout) {
      self->request(fleets.front().fleet, caf::infinite, stop_atom::value, *timeout)
          .then(handle_status, handle_error);
    } else {
      self->request(fleets.front().fleet, caf::infinite, stop_atom::value)
          .then(handle_status, handle_error);
    }
  });
}

void handle_fleet_restart(Session* self, const protocol::Request& request) {
  const auto id = request.id;
  const std::string name = request.fleet_name;
  const std::string vm = request.target.name;
  with_fleets(self, request, [=](std::vector<FleetEntry> fleets) {
    if (fleets.empty())
      return self->state.fail(id, "no fleet named " + name + " of yours");
    self->request(fleets.front().fleet, std::chrono::seconds(10), restart_atom::value, vm)
        .then(
            [=](bool restarted) {
              if (!restarted)
                return self->state.fail(id, "no VM " + vm + " in fleet " + name);
              self->state.reply(protocol::ok_reply(id));
            },
            [=](caf::error& error) { self->state.fail(id, self->system().render(error)); });
  });
}

caf::behavior session_behavior(Session* self, SessionContext context, PeerCredentials peer,
                               std::shared_ptr<ConnectionPort> connection) {
  auto& st = self->state;
  st.context = context;
  st.peer = peer;
  st.connection = std::move(connection);
  spdlog::debug("session: pid {} uid {} connected", peer.pid, peer.uid);
  self->set_down_handler([=](const caf::down_msg& down) { on_vm_gone(self, down); });
  return {
      [=](request_atom, const RequestEnvelope& envelope) {
        const auto& request = envelope.request;
        switch (request.op) {
          case protocol::Op::ping: {
            json reply = protocol::ok_reply(request.id);
            reply["pong"] = true;
            return self->state.reply(std::move(reply));
          }
          case protocol::Op::version: {
            json reply = protocol::ok_reply(request.id);
            reply["protocol"] = protocol::kVersion;
            reply["crosvisor"] = "0.1.0";
            return self->state.reply(std::move(reply));
          }
          case protocol::Op::create:
            return handle_create(self, request, std::move(*envelope.fds));
          case protocol::Op::list:
            return handle_list(self, request);
          case protocol::Op::info: {
            const auto id = request.id;
            return with_target(self, request, [=](const FoundVm& vm) {
              json reply = protocol::ok_reply(id);
              reply["vm"] = protocol::info_json(vm.info);
              self->state.reply(std::move(reply));
            });
          }
          case protocol::Op::stop:
            return handle_stop(self, request);
          case protocol::Op::logs:
            return handle_logs(self, request);
          case protocol::Op::fleet_up:
            return handle_fleet_up(self, request, std::move(*envelope.fds));
          case protocol::Op::fleet_status:
            return handle_fleet_status(self, request);
          case protocol::Op::fleet_down:
            return handle_fleet_down(self, request);
          case protocol::Op::fleet_restart:
            return handle_fleet_restart(self, request);
          case protocol::Op::subscribe: {
            const auto id = request.id;
            return with_target(self, request, [=](const FoundVm& vm) {
              self->send(vm.actor, subscribe_atom::value, caf::actor_cast<caf::actor>(self));
              self->state.reply(protocol::ok_reply(id));
            });
          }
        }
      },
      [=](const VmEvent& event) { forward_state(self, event); },
      [=](const ConsoleLine& line) { self->state.reply(protocol::console_event(line)); },
      [=](closed_atom) {
        // Fleets held by this session (--foreground) go down with it, gracefully.
        for (auto& fleet : self->state.foreground_fleets)
          caf::anon_send(fleet, stop_atom::value);
        spdlog::debug("session: pid {} uid {} gone; its {} VM handle(s) go with it",
                      self->state.peer.pid, self->state.peer.uid, self->state.handles.size());
        self->quit();
      },
  };
}

// The connection's side: it runs on the server thread and only posts messages.
class SessionActorSink : public SessionSink {
 public:
  explicit SessionActorSink(caf::actor session) : session_(std::move(session)) {}
  ~SessionActorSink() override = default;
  void request(protocol::Request request, std::vector<UniqueFd> fds) override {
    caf::anon_send(session_, request_atom::value,
                   RequestEnvelope{std::move(request),
                                   std::make_shared<std::vector<UniqueFd>>(std::move(fds))});
  }
  void closed() override { caf::anon_send(session_, closed_atom::value); }

 private:
  caf::actor session_;
};

}  // namespace

std::unique_ptr<SessionSink> start_session(const SessionContext& context,
                                           const PeerCredentials& peer,
                                           std::shared_ptr<ConnectionPort> connection) {
  auto session = context.system->spawn(session_behavior, context, peer, std::move(connection));
  return std::make_unique<SessionActorSink>(std::move(session));
}

}  // namespace crosvisor::daemon
