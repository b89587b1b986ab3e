// Inside a control-socket session (daemon/session.hpp): its state, and the request handlers that
// session.cpp dispatches to (VM requests in vm_requests.cpp, fleet requests in
// fleet_requests.cpp). Not for use outside daemon/.
#pragma once

#include <caf/actor.hpp>
#include <caf/stateful_actor.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "crosvisor/error.hpp"
#include "crosvisor/vm_event.hpp"
#include "daemon/session.hpp"
#include "protocol/replies.hpp"
#include "protocol/requests.hpp"

namespace crosvisor::daemon {

struct SessionState {
  static inline const char* name = "crosvisor.session";
  std::shared_ptr<ConnectionPort> connection;
  PeerCredentials peer;
  SessionContext context;
  // The VMs this client created, by name (names are unique per owner): they die with it, and
  // their events reach the session through these handles.
  std::map<std::string, VmHandle> handles;
  std::map<std::string, VmState> forwarded;  // the last state sent per VM, to drop repeats
  std::multimap<std::string, std::uint64_t> stop_waiters;  // answered when the VM is dead
  std::vector<FleetActor> foreground_fleets;               // they go down with this session
  std::map<caf::actor_addr, std::string> watched;  // VMs stopped or followed, by their actor
  // The interactive consoles this client is attached to, by VM name.
  struct ConsoleAttachment {
    VmActor vm;
    bool writer = false;
  };
  std::map<std::string, ConsoleAttachment> consoles;
  // What `events` asked for: every VM the client may see (all_users: every user's, when it may),
  // or only the named ones.
  struct EventFilter {
    std::vector<std::string> names;
    bool all_users = false;
  };
  std::optional<EventFilter> events;
  // What runs if a deadline set with at_deadline passes first, by the deadline's number.
  std::map<std::uint64_t, std::function<void()>> deadlines;
  std::uint64_t last_deadline = 0;

  void reply(nlohmann::json message) { connection->send(std::move(message)); }
  void reply_text(std::string text) { connection->send_text(std::move(text)); }
  void fail(std::uint64_t id, const Error& error) {
    connection->send(protocol::error_reply(id, error));
  }
  void fail(std::uint64_t id, ErrorKind kind, std::string message) {
    fail(id, Error{kind, std::move(message)});
  }
  // Whether this client may act on (or see) a VM or fleet of `owner`.
  bool may_act_on(std::optional<std::uint32_t> owner) const {
    return peer.uid == 0 || (owner && *owner == peer.uid);
  }
  // Whether a request for every user's VMs or fleets is allowed.
  bool may_see_all() const { return peer.uid == 0 || peer.uid == context.daemon_uid; }
};

using Session = caf::stateful_actor<SessionState>;

// Runs `expired` on the session's thread after `after`, unless cancel_deadline comes first: one
// timer for a whole piece of work (asking thousands of VMs), where a timeout per request would
// cost a clock entry each.
std::uint64_t at_deadline(Session* self, std::chrono::milliseconds after,
                          std::function<void()> expired);
void cancel_deadline(Session* self, std::uint64_t deadline);

// A VM's own actor (not a handle) and what it said about itself.
struct FoundVm {
  VmActor actor;
  VmInfo info;
};

// Every live VM with what it last told the service, as the service keeps it (a VM only just
// created, which told nothing yet, is asked), then `done` (on the session's thread): what a list
// of thousands shows without a request to each VM. An error when the service, or a VM asked,
// did not answer in time.
struct ListedVms {
  std::vector<ListedVm> vms;
  std::optional<Error> error;
};
void gather_listed(Session* self, std::function<void(ListedVms)> done);
// The one VM `target` names, if this client may act on it; otherwise request `id` is refused,
// or, given `missing`, that is called instead (to look among the dead).
void with_target(Session* self, std::uint64_t id, const protocol::Target& target,
                 std::function<void(const FoundVm&)> act, std::function<void()> missing = nullptr);
// Refuses request `id`: no VM `target` names that this client may see (living or remembered).
void not_found(Session* self, std::uint64_t id, const protocol::Target& target);
// The dead VM `target` names among those the daemon remembers and this client may see, or
// nothing (on the session's thread).
void find_dead(Session* self, const protocol::Target& target,
               std::function<void(std::optional<VmInfo>)> done);
// A VM event the client asked for (events), if it may see it.
void forward_event(Session* self, const SupervisorEvent& event);
// Sends a VM's state change to the client (once per state), and answers stops waiting for it.
void forward_state(Session* self, const VmEvent& event);
// A watched VM's actor is gone: if its death never reached us, say it now.
void on_vm_gone(Session* self, const caf::down_msg& down);

// One handler per request type, answering request `id`: VM requests in vm_requests.cpp, fleet
// requests in fleet_requests.cpp, the rest in session.cpp.
void handle(Session* self, std::uint64_t id, const protocol::CreateRequest& request,
            std::vector<UniqueFd> fds);
void handle(Session* self, std::uint64_t id, const protocol::ListRequest& request);
void handle(Session* self, std::uint64_t id, const protocol::StatsRequest& request);
void handle(Session* self, std::uint64_t id, const protocol::InfoRequest& request);
void handle(Session* self, std::uint64_t id, const protocol::StopRequest& request);
void handle(Session* self, std::uint64_t id, const protocol::LogsRequest& request);
void handle(Session* self, std::uint64_t id, const protocol::SubscribeRequest& request);
void handle(Session* self, std::uint64_t id, const protocol::ConsoleRequest& request);
void handle(Session* self, std::uint64_t id, const protocol::ConsoleInputRequest& request);
void handle(Session* self, std::uint64_t id, const protocol::ConsoleDetachRequest& request);
void handle(Session* self, std::uint64_t id, const protocol::DumpRequest& request,
            std::vector<UniqueFd> fds);

void handle(Session* self, std::uint64_t id, const protocol::FleetUpRequest& request,
            std::vector<UniqueFd> fds);
void handle(Session* self, std::uint64_t id, const protocol::FleetStatusRequest& request);
void handle(Session* self, std::uint64_t id, const protocol::FleetDownRequest& request);
void handle(Session* self, std::uint64_t id, const protocol::FleetRestartRequest& request);
void handle(Session* self, std::uint64_t id, const protocol::FleetForgetRequest& request);
void handle(Session* self, std::uint64_t id, const protocol::RemoveRequest& request);
void handle(Session* self, std::uint64_t id, const protocol::EventsRequest& request);

// Whether this daemon is part of a cluster; if not, the request is refused (state), saying how.
bool in_cluster(Session* self, std::uint64_t id);
// The same for a cluster fleet (request.cluster): through etcd (daemon/cluster_requests.cpp),
// with the cluster's hosts and events.
void handle(Session* self, std::uint64_t id, const protocol::HostsRequest& request);
void handle(Session* self, std::uint64_t id, const protocol::ClusterEventsRequest& request);
void handle_cluster(Session* self, std::uint64_t id, const protocol::FleetUpRequest& request,
                    std::vector<UniqueFd> fds);
void handle_cluster(Session* self, std::uint64_t id, const protocol::FleetStatusRequest& request);
void handle_cluster(Session* self, std::uint64_t id, const protocol::FleetDownRequest& request);

// A client may name a VMM binary only to a daemon running as the client's own user: a daemon
// serving other users (root with --shared) runs only the binaries it was started with.
std::optional<Error> check_vmm_binary(const Session* self, const VmSpec& spec);

}  // namespace crosvisor::daemon
