// Requests on the control socket (docs/protocol.md), one type per operation. The client encodes
// them and the daemon parses them with the functions below, so both sides read one definition.
// Pure logic.
//   {"id": N, "op": "<the type's op>", ...the type's fields}
// Replies and events: protocol/replies.hpp.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "crosvisor/error.hpp"
#include "crosvisor/vm_event.hpp"

namespace crosvisor::protocol {

inline constexpr int kVersion = 2;
inline constexpr std::size_t kMaxNesting = 64;  // arrays and objects within each other
inline constexpr std::uint32_t kMaxTimeoutMs = 3'600'000;
inline constexpr std::uint32_t kMaxLogLines = 100'000;
inline constexpr std::size_t kMaxConsoleInput = 64 << 10;  // bytes of one console_input

// A VM as a request names it: by name, or by CID (all digits; a VM name is never all digits).
struct Target {
  std::string text;  // as the user gave it
  std::optional<std::uint32_t> cid;
  bool matches(const VmInfo& info) const { return cid ? info.cid == *cid : info.name == text; }
  friend bool operator==(const Target&, const Target&) = default;
};
// "web" names a VM, "2049" a CID; the error says why `text` is neither.
Expected<Target> parse_target(std::string_view text);

// Boots a VM. `vm` is its description (protocol/spec_json.hpp), whose files come as fds.
// detach: the daemon holds it (until `stop`) instead of this session.
struct CreateRequest {
  static constexpr std::string_view op = "create";
  nlohmann::json vm;
  bool detach = false;
};
// The caller's VMs; with all_users every user's (root, or the daemon's own user); with dead,
// the dead ones the daemon remembers too (until `remove`).
struct ListRequest {
  static constexpr std::string_view op = "list";
  bool all_users = false;
  bool dead = false;
};
// What the caller's live VMs (those of `names`, else all; every user's with all_users) have
// used: {"vms": [stats_json...]}.
struct StatsRequest {
  static constexpr std::string_view op = "stats";
  std::vector<std::string> names;
  bool all_users = false;
};
// Forgets a dead VM the daemon remembers (vm rm); refused for a live one.
struct RemoveRequest {
  static constexpr std::string_view op = "remove";
  Target vm;
};
// Every VM event the caller may see, as {"event": "vm", ...} (protocol/replies.hpp): first those
// the daemon remembers from since_ms (Unix time, ms) on, then each as it comes, until the
// session ends. names: only these VMs (all when empty).
struct EventsRequest {
  static constexpr std::string_view op = "events";
  std::optional<std::uint64_t> since_ms;
  std::vector<std::string> names;
  bool all_users = false;
};
struct InfoRequest {
  static constexpr std::string_view op = "info";
  Target vm;
};
// Answered once the VM is dead. force: SIGKILL at once; timeout_ms: the graceful part's
// deadline instead of the VM's stop_timeout.
struct StopRequest {
  static constexpr std::string_view op = "stop";
  Target vm;
  bool force = false;
  std::optional<std::uint32_t> timeout_ms;
};
// The last `lines` console lines kept (0: all kept); follow: then stream new ones as events
// until the VM dies.
struct LogsRequest {
  static constexpr std::string_view op = "logs";
  Target vm;
  std::uint32_t lines = 0;
  bool follow = false;
};
// The VM's state changes (and console lines) as events from now on.
struct SubscribeRequest {
  static constexpr std::string_view op = "subscribe";
  Target vm;
};
// Attaches this session to a debug = full VM's interactive console: its bytes come as
// {"event": "console_data", "vm", "data": base64} until the VM dies or the session detaches.
// write: this session's input reaches the guest (one writer at a time; force takes it over, and
// the writer before hears {"event": "console_writer_lost", "vm"}). Reply: "vm" (its name, which
// console_input and console_detach use), "writer".
struct ConsoleRequest {
  static constexpr std::string_view op = "console";
  Target vm;
  bool write = true;
  bool force = false;
};
// Bytes for the guest to read on its console (JSON: base64 in "data"); this session must be its
// writer. `vm` is the name the console reply gave.
struct ConsoleInputRequest {
  static constexpr std::string_view op = "console_input";
  std::string vm;
  std::string bytes;
};
struct ConsoleDetachRequest {
  static constexpr std::string_view op = "console_detach";
  std::string vm;
};
// A debug = full QEMU VM's memory as an ELF core (the guest paused meanwhile, going on after):
// into the dump directory, or (file: true) into the one file attached, which the client opened
// for writing. Reply: "path", where it went (the client's own name for its file).
struct DumpRequest {
  static constexpr std::string_view op = "dump";
  Target vm;
  bool file = false;
};
struct PingRequest {
  static constexpr std::string_view op = "ping";
};
struct VersionRequest {
  static constexpr std::string_view op = "version";
};
// The hosts of the cluster this crosvisord is part of (docs/cluster.md), and whether each is up.
struct HostsRequest {
  static constexpr std::string_view op = "hosts";
};
// The cluster's events (placements, host losses, VM deaths, fences) from since_ms on.
struct ClusterEventsRequest {
  static constexpr std::string_view op = "cluster_events";
  std::uint64_t since_ms = 0;
};
// Starts a fleet (protocol/fleet_json.hpp), whose files come as fds. foreground: it lives as
// long as this session, which hears its members' state changes. persist: it comes up again
// whenever crosvisord starts (host boot), its files reopened with the owner's rights. cluster:
// placed on the hosts of the daemon's cluster instead (docs/cluster.md).
struct FleetUpRequest {
  static constexpr std::string_view op = "fleet_up";
  nlohmann::json fleet;
  bool foreground = false;
  bool persist = false;
  bool cluster = false;
};
// One fleet's status, or (no name) every fleet the caller may see; cluster: a cluster fleet's,
// from etcd (one name).
struct FleetStatusRequest {
  static constexpr std::string_view op = "fleet_status";
  std::string fleet;
  bool all_users = false;
  bool cluster = false;
};
// One fleet down, or (all, no name) every fleet the caller may see at once, in parallel (every
// user's, with all_users, for root): how a host shutdown stops its guests.
struct FleetDownRequest {
  static constexpr std::string_view op = "fleet_down";
  std::string fleet;
  bool force = false;
  std::optional<std::uint32_t> timeout_ms;
  bool all = false;
  bool all_users = false;
  bool cluster = false;  // a cluster fleet: removed from etcd, its hosts stop its VMs
};
// A persistent fleet no longer comes up when crosvisord starts (a running one keeps running).
struct FleetForgetRequest {
  static constexpr std::string_view op = "fleet_forget";
  std::string fleet;
};
// Stops one member of a fleet and starts it afresh.
struct FleetRestartRequest {
  static constexpr std::string_view op = "fleet_restart";
  std::string fleet;
  Target vm;
};

using RequestBody =
    std::variant<CreateRequest, ListRequest, InfoRequest, StopRequest, LogsRequest,
                 SubscribeRequest, ConsoleRequest, ConsoleInputRequest, ConsoleDetachRequest,
                 DumpRequest, PingRequest, VersionRequest, FleetUpRequest, FleetStatusRequest,
                 FleetDownRequest, FleetRestartRequest, RemoveRequest, EventsRequest,
                 FleetForgetRequest, HostsRequest, ClusterEventsRequest, StatsRequest>;

struct Request {
  std::uint64_t id = 0;
  RequestBody body;
};

std::string_view op_of(const RequestBody& body);
// Whether files may come with the request (create, fleet_up, dump); any other refuses them.
bool takes_fds(const RequestBody& body);

// Parses and checks one request; the error (ErrorKind::protocol) says what is wrong. `id` is
// set whenever the payload carried a usable one, so that even a refusal can name the request
// it answers.
Expected<Request> parse_request(std::string_view payload, std::optional<std::uint64_t>& id);
// The request as JSON, ready to be framed.
nlohmann::json encode_request(std::uint64_t id, const RequestBody& body);

}  // namespace crosvisor::protocol
