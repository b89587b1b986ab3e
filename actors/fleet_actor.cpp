#include "actors/fleet_actor.hpp"

#include <spdlog/spdlog.h>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <map>

#include "actors/durable_vms.hpp"
#include "actors/network_actor.hpp"
#include "crosvisor/error_bridge.hpp"
#include "crosvisor/messages.hpp"
#include "lifecycle/fleet_policy.hpp"

namespace crosvisor {
namespace {

using restart_due_atom = caf::atom_constant<caf::atom("restartdue")>;

// The fleet, as the client of its members' handles and with its own restart timer.
using FleetImpl = FleetActor::extend<caf::reacts_to<VmEvent>, caf::reacts_to<ConsoleText>,
                                     caf::reacts_to<restart_due_atom, std::size_t>>;

struct Member {
  config::FleetVm vm;
  VmHandle handle;  // while the VM is not dead
  lifecycle::RestartTracker tracker;
  FleetMemberStatus status;
  bool up = false;                          // counted as up at least once
  bool manual = false;                      // a restart by hand is under way
  bool start_pending = false;               // a create is in flight, or a (re)start is scheduled
  std::optional<store::VmRecord> takeover;  // its VMM, left running by the daemon before
  bool up_before = false;  // it was up under that daemon: a death now is handled by its policy
  // `vm fleet restart`, answered when done
  std::vector<caf::typed_response_promise<FleetMemberStatus>> restart_waiters;
};

struct FleetState {
  static inline const char* name = "crosvisor.fleet";
  // Not an aggregate: CAF builds a state from the actor's pointer whenever it can, and C++20
  // would let that pointer initialise the first member, a typed handle.
  FleetState() = default;
  ServiceActor service;
  std::string fleet_name;
  std::vector<Member> members;
  std::map<std::string, std::size_t> index_of;
  std::unique_ptr<lifecycle::StartPlan> plan;
  std::vector<caf::actor> subscribers;
  bool stopping = false;
  std::vector<caf::typed_response_promise<FleetStatus>> down_waiters;
  // The fleet's networks, up before its first VM starts, held until the fleet goes.
  std::vector<NetworkSpec> network_specs;
  std::vector<NetworkActor> networks;
  std::optional<std::uint32_t> owner;
  bool durable = false;  // its VMs outlive the daemon (FleetLife)
  std::map<std::string, store::NetworkRecord> network_takeover;
};

using Fleet = FleetImpl::stateful_pointer<FleetState>;

// Restart times across a supervisor's restart: the steady clock does not survive the process.
using TrackerClock = lifecycle::RestartTracker::Clock;

std::vector<std::int64_t> to_unix_ms(const std::deque<TrackerClock::time_point>& times) {
  const auto steady_now = TrackerClock::now();
  const auto unix_now = std::chrono::system_clock::now();
  std::vector<std::int64_t> unix;
  for (const auto& t : times) {
    const auto at =
        unix_now - std::chrono::duration_cast<std::chrono::system_clock::duration>(steady_now - t);
    unix.push_back(
        std::chrono::duration_cast<std::chrono::milliseconds>(at.time_since_epoch()).count());
  }
  return unix;
}

std::deque<TrackerClock::time_point> from_unix_ms(const std::vector<std::int64_t>& times) {
  const auto steady_now = TrackerClock::now();
  const auto unix_now = std::chrono::system_clock::now();
  std::deque<TrackerClock::time_point> steady;
  for (const auto ms : times) {
    const auto at = std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
    steady.push_back(steady_now -
                     std::chrono::duration_cast<TrackerClock::duration>(unix_now - at));
  }
  return steady;
}

bool is_up(const Member& member) {
  return member.status.state == VmState::ready ||
         (member.status.state == VmState::running && !has_ready_condition(member.vm.spec));
}

FleetStatus status_of(Fleet self) {
  auto& st = self->state;
  FleetStatus status;
  status.name = st.fleet_name;
  for (const auto& member : st.members) {
    status.vms.push_back(member.status);
    status.vms.back().up = is_up(member);
    status.ready += status.vms.back().up;
    status.failed += member.status.failed;
    status.blocked += member.status.blocked;
  }
  return status;
}

// A restart by hand is over: the VM is up again, or it will not be.
void answer_restart_waiters(Member& member) {
  for (auto& waiter : member.restart_waiters)
    waiter.deliver(member.status);
  member.restart_waiters.clear();
}

void start_what_may(Fleet self);

// VM i will not come up: what waits for it is blocked, and says so; its start slot goes to the
// next VM that may start.
void give_up(Fleet self, std::size_t i) {
  auto& st = self->state;
  for (std::size_t blocked : st.plan->on_given_up(i)) {
    auto& member = st.members[blocked];
    member.status.blocked = true;
    member.status.problem = "waits for " + st.members[i].vm.spec.name + ", which failed";
    spdlog::warn("fleet {}: {} {}", st.fleet_name, member.vm.spec.name, member.status.problem);
  }
  answer_restart_waiters(st.members[i]);
  start_what_may(self);
}

void start_member(Fleet self, std::size_t i) {
  auto& member = self->state.members[i];
  member.status.state = VmState::created;
  member.start_pending = true;
  auto takeover = std::exchange(member.takeover, std::nullopt);  // once: its VMM, if any
  auto created =
      self->state.durable
          ? self->request(caf::actor_cast<DurableVms>(self->state.service),
                          std::chrono::seconds(30), create_durable_atom::value, member.vm.spec,
                          caf::actor_cast<caf::actor>(self),
                          DurableStart{member.status.restarts, to_unix_ms(member.tracker.recent()),
                                       std::move(takeover)})
          : self->request(self->state.service, std::chrono::seconds(30), create_atom::value,
                          member.vm.spec, caf::actor_cast<caf::actor>(self));
  created.then(
      [=](VmHandle handle) {
        auto& m = self->state.members[i];
        m.start_pending = false;
        self->send(handle, events_atom::value);  // states are what a fleet watches
        // A fleet going down meanwhile does not wait for a VM it never told to stop.
        if (self->state.stopping)
          self->send(handle, stop_atom::value);
        m.handle = std::move(handle);
      },
      [=](caf::error& error) {
        auto& m = self->state.members[i];
        m.start_pending = false;
        m.status.failed = true;
        m.status.problem = "could not be created: " + from_caf_error(error).message;
        spdlog::error("fleet {}: {} {}", self->state.fleet_name, m.vm.spec.name, m.status.problem);
        give_up(self, i);
      });
}

// Those who watch every VM (vm events) hear that the next start of `member` is the fleet's doing:
// `restarts` so far (0 for a restart by hand).
void announce_restart(Fleet self, const Member& member, std::uint32_t restarts) {
  caf::anon_send(caf::actor_cast<FleetRestartSink>(self->state.service), restarted_atom::value,
                 member.vm.spec.name, self->state.fleet_name, self->state.owner, restarts);
}

void start_what_may(Fleet self) {
  if (self->state.stopping || self->state.networks.size() < self->state.network_specs.size())
    return;  // not yet: its networks first
  // VMMs that run already are taken over at once, whatever they wait for: a VM left waiting
  // here would run on unsupervised.
  for (std::size_t i = 0; i < self->state.members.size(); ++i) {
    if (self->state.members[i].takeover) {
      self->state.plan->start_now(i);
      start_member(self, i);
    }
  }
  for (std::size_t i : self->state.plan->startable())
    start_member(self, i);
}

void finish_down_if_done(Fleet self) {
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
  for (auto& member : st.members)
    answer_restart_waiters(member);
  self->quit();
}

void on_event(Fleet self, const VmEvent& event) {
  auto& st = self->state;
  for (auto& subscriber : st.subscribers)
    caf::anon_send(subscriber, event);
  auto found = st.index_of.find(event.vm);
  if (found == st.index_of.end())
    return;
  const std::size_t i = found->second;
  Member& member = st.members[i];
  member.status.state = event.state;
  if (event.pid)
    member.status.pid = event.pid;
  if (event.cid)
    member.status.cid = event.cid;
  if (is_up(member)) {
    member.status.problem.clear();
    answer_restart_waiters(member);
    if (!member.up) {
      member.up = true;
      st.plan->on_up(i);
      start_what_may(self);
    }
  }
  if (event.state != VmState::dead)
    return;
  member.handle = VmHandle();  // its CID goes back; a restart gets a fresh one
  member.status.last_death = event.reason;
  member.status.pid.reset();
  member.status.cid.reset();
  if (st.stopping)
    return finish_down_if_done(self);
  if (!member.vm.unavailable.empty()) {
    member.status.failed = true;
    member.status.problem = member.vm.unavailable;
    give_up(self, i);
    return answer_restart_waiters(member);
  }
  if (member.manual) {
    member.manual = false;
    member.tracker.reset();
    announce_restart(self, member, 0);
    return start_member(self, i);
  }
  const auto reason = event.reason.value_or(DeathReason::unknown);
  const auto delay = member.tracker.on_death(reason, lifecycle::RestartTracker::Clock::now());
  member.status.restarts = member.tracker.restarts();
  if (delay) {
    spdlog::info("fleet {}: {} died ({}), restarting in {} ms", st.fleet_name, event.vm,
                 to_string(reason), delay->count());
    member.start_pending = true;
    self->delayed_send(self, *delay, restart_due_atom::value, i);
    return;
  }
  if (member.tracker.failed()) {
    member.status.failed = true;
    member.status.problem = "died (" + std::string(to_string(reason)) + ") after " +
                            std::to_string(member.tracker.restarts()) + " restart(s) within " +
                            std::to_string(member.vm.restart.window.count() / 1000) +
                            " s; left down";
    spdlog::error("fleet {}: {} {}", st.fleet_name, event.vm, member.status.problem);
  } else if (!member.up && !member.up_before) {
    member.status.failed = true;
    member.status.problem = "died (" + std::string(to_string(reason)) + ") before it was up" +
                            (event.detail.empty() ? "" : ": " + event.detail);
  }
  if ((!member.up && !member.up_before) || member.status.failed)
    give_up(self, i);
  answer_restart_waiters(member);
}

// The fleet's networks, one after the other; then its VMs may start. A network that cannot come
// up fails every VM (none would reach the others): nothing starts.
void bring_networks_up(Fleet self) {
  auto& st = self->state;
  const std::size_t i = st.networks.size();
  if (i == st.network_specs.size())
    return start_what_may(self);
  std::optional<DurableNetwork> durable;
  if (st.durable) {
    durable.emplace();
    durable->fleet = st.fleet_name;
    if (auto left = st.network_takeover.find(st.network_specs[i].name);
        left != st.network_takeover.end())
      durable->takeover = left->second;
    for (const auto& member : st.members) {
      if (member.takeover)
        durable->vmms.push_back(
            {member.takeover->pid, member.takeover->start_time, member.takeover->args});
    }
  }
  self->request(caf::actor_cast<NetworkRegistry>(st.service), std::chrono::seconds(90),
                network_up_atom::value, st.network_specs[i], st.owner, std::move(durable))
      .then(
          [=](NetworkActor network) {
            self->state.networks.push_back(std::move(network));
            bring_networks_up(self);
          },
          [=](caf::error& error) {
            auto& s = self->state;
            const std::string why = from_caf_error(error).message;
            spdlog::error("fleet {}: {}: no VM starts", s.fleet_name, why);
            for (auto& member : s.members) {
              member.status.failed = true;
              member.status.problem = why;
            }
          });
}

// Stops the fleet: every VM at once, as `stop` tells each one (gracefully, within a timeout, or
// killed).
caf::typed_response_promise<FleetStatus> go_down(Fleet self,
                                                 const std::function<void(const VmHandle&)>& stop) {
  auto promise = self->make_response_promise<FleetStatus>();
  self->state.down_waiters.push_back(promise);
  self->state.stopping = true;
  for (auto& member : self->state.members) {
    if (member.handle)
      stop(member.handle);
  }
  finish_down_if_done(self);
  return promise;
}

FleetImpl::behavior_type fleet_behavior(Fleet self, ServiceActor service, config::FleetSpec fleet,
                                        FleetLife life) {
  auto& st = self->state;
  st.service = std::move(service);
  st.durable = life.durable;
  st.network_takeover = std::move(life.network_takeover);
  if (life.subscriber)
    st.subscribers.push_back(std::move(life.subscriber));
  st.fleet_name = fleet.name;
  std::vector<std::vector<std::size_t>> after;
  for (std::size_t i = 0; i < fleet.vms.size(); ++i)
    st.index_of[fleet.vms[i].spec.name] = i;
  for (auto& vm : fleet.vms) {
    std::vector<std::size_t> deps;
    for (const auto& name : vm.after)
      deps.push_back(st.index_of.at(name));
    after.push_back(std::move(deps));
    vm.spec.fleet = fleet.name;
    const config::RestartSpec restart = vm.restart;
    Member member{.vm = std::move(vm), .tracker = lifecycle::RestartTracker(restart)};
    member.status.name = member.vm.spec.name;
    if (auto left = life.takeover.find(member.vm.spec.name); left != life.takeover.end()) {
      // Its policy goes on where the daemon before left it: the restarts within the window
      // still count against its intensity.
      member.tracker.resume(left->second.restarts, from_unix_ms(left->second.recent_restarts_ms));
      member.up_before = left->second.ready || !has_ready_condition(member.vm.spec);
      member.status.restarts = left->second.restarts;
      member.takeover = std::move(left->second);
    }
    st.members.push_back(std::move(member));
  }
  st.plan = std::make_unique<lifecycle::StartPlan>(std::move(after), fleet.concurrency);
  spdlog::info("fleet {}: {} VM(s), {} at a time", st.fleet_name, st.members.size(),
               fleet.concurrency);
  st.network_specs = std::move(fleet.networks);
  if (!st.members.empty())
    st.owner = st.members.front().vm.spec.owner_uid;
  // A restored fleet whose owner can no longer open a VM's file: that VM fails, the rest run.
  for (std::size_t i = 0; i < st.members.size(); ++i) {
    auto& member = st.members[i];
    if (member.vm.unavailable.empty() || member.takeover)
      continue;  // a running VMM has its files: it is taken over, only never started again
    member.status.failed = true;
    member.status.problem = member.vm.unavailable;
    spdlog::error("fleet {}: {} {}", st.fleet_name, member.vm.spec.name, member.status.problem);
    give_up(self, i);
  }
  bring_networks_up(self);
  start_what_may(self);
  return {
      [=](const VmEvent& event) { on_event(self, event); },
      [=](const ConsoleText&) {},  // the few before the handle heard events_atom
      [=](restart_due_atom, std::size_t i) {
        auto& member = self->state.members[i];
        if (self->state.stopping || member.handle) {
          member.start_pending = false;
          return finish_down_if_done(self);
        }
        announce_restart(self, member, member.status.restarts);
        start_member(self, i);
      },
      [=](fleet_status_atom) { return status_of(self); },
      [=](subscribe_atom, caf::actor subscriber) {
        self->state.subscribers.push_back(std::move(subscriber));
      },
      [=](stop_atom) {
        return go_down(self, [=](const VmHandle& vm) { self->send(vm, stop_atom::value); });
      },
      [=](stop_atom, std::uint32_t timeout_ms) {
        return go_down(self,
                       [=](const VmHandle& vm) { self->send(vm, stop_atom::value, timeout_ms); });
      },
      [=](stop_atom, kill_atom) {
        return go_down(
            self, [=](const VmHandle& vm) { self->send(vm, stop_atom::value, kill_atom::value); });
      },
      [=](restart_atom, const std::string& name) -> caf::result<FleetMemberStatus> {
        auto& s = self->state;
        auto found = s.index_of.find(name);
        if (found == s.index_of.end())
          return to_caf_error(ErrorKind::not_found, "fleet " + s.fleet_name + " has no VM " + name);
        if (s.stopping)
          return to_caf_error(ErrorKind::state, "fleet " + s.fleet_name + " is going down");
        const std::size_t i = found->second;
        Member& member = s.members[i];
        if (member.status.blocked)
          return to_caf_error(ErrorKind::state,
                              name + " " + member.status.problem + ": restart that one first");
        if (!member.vm.unavailable.empty())
          return to_caf_error(ErrorKind::state,
                              name + " " + member.vm.unavailable +
                                  ": bring the fleet up again from its file once it can be read");
        auto promise = self->make_response_promise<FleetMemberStatus>();
        member.restart_waiters.push_back(promise);
        if (member.status.failed) {
          s.plan->on_restart(i);
          for (std::size_t v = 0; v < s.members.size(); ++v) {
            if (s.members[v].status.blocked && !s.plan->blocked(v)) {
              s.members[v].status.blocked = false;
              s.members[v].status.problem.clear();
            }
          }
        }
        member.status.failed = false;
        member.status.problem.clear();
        if (member.handle) {
          member.manual = true;  // started again when its death arrives
          self->send(member.handle, stop_atom::value);
        } else if (member.start_pending) {
          member.tracker.reset();  // already on its way up
        } else {
          member.tracker.reset();
          start_member(self, i);
        }
        return promise;
      },
  };
}

}  // namespace

FleetActor spawn_fleet(caf::actor_system& system, ServiceActor service, config::FleetSpec fleet,
                       FleetLife life) {
  return system.spawn(fleet_behavior, std::move(service), std::move(fleet), std::move(life));
}

}  // namespace crosvisor
