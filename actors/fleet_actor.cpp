#include "actors/fleet_actor.hpp"

#include <spdlog/spdlog.h>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <map>

#include "crosvisor/messages.hpp"
#include "supervisor/fleet_policy.hpp"

namespace crosvisor {
namespace {

using restart_due_atom = caf::atom_constant<caf::atom("restartdue")>;

struct Member {
  config::FleetVm vm;
  caf::actor handle;  // while the VM is not dead
  RestartTracker tracker;
  FleetMemberStatus status;
  bool up = false;             // counted as up at least once
  bool manual = false;         // a restart by hand is under way
  bool start_pending = false;  // a create is in flight, or a (re)start is scheduled
};

struct FleetState {
  static inline const char* name = "crosvisor.fleet";
  caf::actor service;
  std::string fleet_name;
  std::vector<Member> members;
  std::map<std::string, std::size_t> index_of;
  std::unique_ptr<StartPlan> plan;
  std::vector<caf::actor> subscribers;
  bool stopping = false;
  std::vector<caf::response_promise> down_waiters;
};

using Fleet = caf::stateful_actor<FleetState>;

FleetStatus status_of(Fleet* self) {
  auto& st = self->state;
  FleetStatus status;
  status.name = st.fleet_name;
  for (const auto& member : st.members) {
    status.vms.push_back(member.status);
    status.ready += member.status.state == VmState::ready ||
                    (member.status.state == VmState::running && !member.vm.spec.ready &&
                     !member.vm.spec.ready_vsock);
    status.failed += member.status.failed;
  }
  return status;
}

bool has_ready_condition(const VmSpec& spec) {
  return spec.ready || spec.ready_vsock;
}

void start_member(Fleet* self, std::size_t i) {
  auto& member = self->state.members[i];
  member.status.state = VmState::created;
  member.start_pending = true;
  self->request(self->state.service, std::chrono::seconds(30), create_atom::value, member.vm.spec,
                caf::actor_cast<caf::actor>(self))
      .then(
          [=](caf::actor handle) {
            auto& m = self->state.members[i];
            m.start_pending = false;
            // A fleet going down meanwhile does not wait for a VM it never told to stop.
            if (self->state.stopping)
              self->send(handle, stop_atom::value);
            m.handle = std::move(handle);
          },
          [=](caf::error& error) {
            auto& m = self->state.members[i];
            const std::string why = self->system().render(error);
            m.start_pending = false;
            spdlog::error("fleet {}: {} could not be created: {}", self->state.fleet_name,
                          m.vm.spec.name, why);
            m.status.failed = true;
            self->state.plan->on_given_up(i);
          });
}

void start_what_may(Fleet* self) {
  if (self->state.stopping)
    return;
  for (std::size_t i : self->state.plan->startable())
    start_member(self, i);
}

void finish_down_if_done(Fleet* self) {
  auto& st = self->state;
  if (!st.stopping)
    return;
  const bool all_dead = std::all_of(st.members.begin(), st.members.end(),
                                    [](const Member& m) { return !m.handle && !m.start_pending; });
  if (!all_dead)
    return;
  const FleetStatus status = status_of(self);
  for (auto& waiter : st.down_waiters)
    waiter.deliver(status);
  st.down_waiters.clear();
  self->quit();
}

void on_event(Fleet* self, const VmEvent& event) {
  auto& st = self->state;
  for (auto& subscriber : st.subscribers)
    self->send(subscriber, event);
  auto found = st.index_of.find(event.vm);
  if (found == st.index_of.end())
    return;
  const std::size_t i = found->second;
  Member& member = st.members[i];
  member.status.state = event.state;
  if (event.state == VmState::running && event.detail.rfind("pid ", 0) == 0) {
    member.status.pid = std::stoi(event.detail.substr(4));
    if (const auto at = event.detail.find("cid "); at != std::string::npos)
      member.status.cid = static_cast<std::uint32_t>(std::stoul(event.detail.substr(at + 4)));
  }
  const bool up = event.state == VmState::ready ||
                  (event.state == VmState::running && !has_ready_condition(member.vm.spec));
  if (up && !member.up) {
    member.up = true;
    st.plan->on_up(i);
    start_what_may(self);
  }
  if (event.state != VmState::dead)
    return;
  member.handle = nullptr;  // its CID goes back; a restart gets a fresh one
  member.status.last_death = event.reason;
  member.status.pid = -1;
  if (st.stopping)
    return finish_down_if_done(self);
  if (member.manual) {
    member.manual = false;
    member.tracker.reset();
    return start_member(self, i);
  }
  const auto delay = member.tracker.on_death(event.reason.value_or(DeathReason::unknown),
                                             RestartTracker::Clock::now());
  member.status.restarts = member.tracker.restarts();
  if (delay) {
    spdlog::info("fleet {}: {} died ({}), restarting in {} ms", st.fleet_name, event.vm,
                 to_string(event.reason.value_or(DeathReason::unknown)), delay->count());
    member.start_pending = true;
    self->delayed_send(self, *delay, restart_due_atom::value, i);
    return;
  }
  if (member.tracker.failed()) {
    member.status.failed = true;
    spdlog::error("fleet {}: {} failed: restarted {} times within {} s; leaving it down",
                  st.fleet_name, event.vm, member.tracker.restarts(),
                  member.vm.restart.window.count() / 1000.0);
  }
  if (!member.up)
    st.plan->on_given_up(i);
}

caf::behavior fleet_behavior(Fleet* self, caf::actor service, config::FleetSpec fleet) {
  auto& st = self->state;
  st.service = std::move(service);
  st.fleet_name = fleet.name;
  std::vector<std::vector<std::size_t>> after;
  for (std::size_t i = 0; i < fleet.vms.size(); ++i)
    st.index_of[fleet.vms[i].spec.name] = i;
  for (auto& vm : fleet.vms) {
    std::vector<std::size_t> deps;
    for (const auto& name : vm.after)
      deps.push_back(st.index_of.at(name));
    after.push_back(std::move(deps));
    const config::RestartSpec restart = vm.restart;
    Member member{std::move(vm), {}, RestartTracker(restart), {}, false, false, false};
    member.status.name = member.vm.spec.name;
    st.members.push_back(std::move(member));
  }
  st.plan = std::make_unique<StartPlan>(std::move(after), fleet.concurrency);
  spdlog::info("fleet {}: {} VM(s), {} at a time", st.fleet_name, st.members.size(),
               fleet.concurrency);
  start_what_may(self);
  return {
      [=](const VmEvent& event) { on_event(self, event); },
      [=](const ConsoleLine&) {},
      [=](restart_due_atom, std::size_t i) {
        auto& member = self->state.members[i];
        if (self->state.stopping || member.handle) {
          member.start_pending = false;
          return finish_down_if_done(self);
        }
        start_member(self, i);
      },
      [=](fleet_status_atom) { return status_of(self); },
      [=](subscribe_atom, caf::actor subscriber) {
        self->state.subscribers.push_back(std::move(subscriber));
      },
      [=](stop_atom) -> caf::result<FleetStatus> {
        auto promise = self->make_response_promise<FleetStatus>();
        self->state.down_waiters.push_back(promise);
        self->state.stopping = true;
        for (auto& member : self->state.members) {
          if (member.handle)
            self->send(member.handle, stop_atom::value);
        }
        finish_down_if_done(self);
        return promise;
      },
      [=](stop_atom, std::uint32_t timeout_ms) -> caf::result<FleetStatus> {
        auto promise = self->make_response_promise<FleetStatus>();
        self->state.down_waiters.push_back(promise);
        self->state.stopping = true;
        for (auto& member : self->state.members) {
          if (member.handle)
            self->send(member.handle, stop_atom::value, timeout_ms);
        }
        finish_down_if_done(self);
        return promise;
      },
      [=](restart_atom, const std::string& name) {
        auto& s = self->state;
        auto found = s.index_of.find(name);
        if (found == s.index_of.end() || s.stopping)
          return false;
        Member& member = s.members[found->second];
        member.status.failed = false;
        if (member.handle) {
          member.manual = true;  // started again when its death arrives
          self->send(member.handle, stop_atom::value);
        } else if (member.start_pending) {
          member.tracker.reset();  // already on its way up
        } else {
          member.tracker.reset();
          start_member(self, found->second);
        }
        return true;
      },
  };
}

}  // namespace

caf::actor spawn_fleet(caf::actor_system& system, caf::actor service, config::FleetSpec fleet) {
  return system.spawn(fleet_behavior, std::move(service), std::move(fleet));
}

}  // namespace crosvisor
