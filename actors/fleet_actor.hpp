// The fleet actor: owns the handles of a fleet's VMs, starts them in `after` order with a
// concurrency limit (waiting for readiness where a VM has a ready condition), restarts them by
// their policy (lifecycle/fleet_policy) and marks the ones past their restart intensity failed
// while the rest keep running.
#pragma once

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "config/fleet_config.hpp"
#include "crosvisor/messages.hpp"
#include "crosvisor/vm_event.hpp"
#include "store/records.hpp"

namespace crosvisor {

using fleet_status_atom = caf::atom_constant<caf::atom("fstatus")>;
using restart_atom = caf::atom_constant<caf::atom("restart")>;
using restarted_atom = caf::atom_constant<caf::atom("restarted")>;

// Where a fleet says that it started one of its VMs again (the service, which tells those who
// watch every VM): (vm, fleet, owner, restarts so far).
using FleetRestartSink =
    caf::typed_actor<caf::reacts_to<restarted_atom, std::string, std::string,
                                    std::optional<std::uint32_t>, std::uint32_t>>;

struct FleetMemberStatus {
  std::string name;
  VmState state = VmState::created;
  std::uint32_t restarts = 0;
  bool failed = false;   // will not come up: past its restart intensity, or not creatable
  bool blocked = false;  // waits (through `after`) for a VM that failed
  std::string problem;   // why it failed or is blocked, for the user
  std::optional<DeathReason> last_death;
  std::optional<std::uint32_t> cid;  // while it runs
  std::optional<pid_t> pid;          // while it runs
  bool up = false;  // counts as ready: ready, or running without a condition to be ready on
};

struct FleetStatus {
  std::string name;
  std::vector<FleetMemberStatus> vms;
  std::size_t ready = 0;  // up: ready, or running when it has no ready condition
  std::size_t failed = 0;
  std::size_t blocked = 0;
};

using FleetActor =
    caf::typed_actor<caf::replies_to<fleet_status_atom>::with<FleetStatus>,
                     // The subscriber receives every member's VmEvents.
                     caf::reacts_to<subscribe_atom, caf::actor>,
                     // Every VM stopped at once (gracefully, within this many milliseconds when
                     // given, or killed) -> the status once every VM is dead; then the fleet actor
                     // quits.
                     caf::replies_to<stop_atom>::with<FleetStatus>,
                     caf::replies_to<stop_atom, std::uint32_t>::with<FleetStatus>,
                     caf::replies_to<stop_atom, kill_atom>::with<FleetStatus>,
                     // (name) -> that VM's status once, stopped and started afresh, it is up again
                     // or has failed; an error (not_found) for a name the fleet does not have.
                     caf::replies_to<restart_atom, std::string>::with<FleetMemberStatus>>;

// How a fleet's VMs live: durable ones outlive the daemon (live restore, docs/state.md), and
// those a daemon before this one left running are taken over, by name, instead of started.
struct FleetLife {
  bool durable = false;
  std::map<std::string, store::VmRecord> takeover;
  // Its networks the daemon before left running, by name: found again, not made (their VMs'
  // TAPs are in them).
  std::map<std::string, store::NetworkRecord> network_takeover;
  // Hears every member's VmEvents from the first one on (subscribe_atom may come too late for
  // a VM that starts at once).
  caf::actor subscriber;
};

FleetActor spawn_fleet(caf::actor_system& system, ServiceActor service, config::FleetSpec fleet,
                       FleetLife life = {});

}  // namespace crosvisor

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::FleetStatus)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::FleetMemberStatus)
