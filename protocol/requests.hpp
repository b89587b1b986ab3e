// Requests, replies and events on the control socket (docs/protocol.md). Pure logic.
//   request: {"id": N, "op": "create" | "list" | "info" | "stop" | "logs" | "subscribe" |
//             "ping" | "version", ...op fields}
//   reply:   {"id": N, "ok": true, ...} or {"id": N, "ok": false, "error": "...", "kind": "..."}
//   event:   {"event": "state", "vm", "state", "reason"?, "detail"} or
//            {"event": "console", "vm", "line"}
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "crosvisor/error.hpp"
#include "crosvisor/vm_event.hpp"

namespace crosvisor::protocol {

inline constexpr int kVersion = 2;
inline constexpr std::size_t kMaxNesting = 64;  // arrays and objects within each other

enum class Op {
  create,
  list,
  info,
  stop,
  logs,
  subscribe,
  ping,
  version,
  fleet_up,
  fleet_status,
  fleet_down,
  fleet_restart
};

// A VM as a request names it: by name, or by CID (all digits).
struct Target {
  std::string name;
  std::optional<std::uint32_t> cid;
  bool matches(const VmInfo& info) const { return cid ? info.cid == *cid : info.name == name; }
};

struct Request {
  std::uint64_t id = 0;
  Op op = Op::ping;
  nlohmann::json vm;       // create: the VM description (spec_json.hpp)
  Target target;           // info, stop, logs, subscribe
  bool all_users = false;  // list, fleet_status: every user's (root or the daemon's own user)
  bool force = false;      // stop, fleet_down: SIGKILL at once
  std::optional<std::uint32_t> timeout_ms;  // stop: the graceful part's deadline
  std::uint32_t lines = 0;                  // logs: how many of the last lines (0: all kept)
  bool follow = false;                      // logs: then stream new lines until the VM dies
  nlohmann::json fleet;                     // fleet_up: the fleet (fleet_json.hpp)
  std::string fleet_name;                   // fleet_status (optional), fleet_down, fleet_restart
  bool foreground = false;                  // fleet_up: the fleet lives as long as this session
};

// Parses and checks one request; the error says what is wrong. `id` is set whenever the
// payload carried a usable one, so that even a refusal can name the request it answers.
Expected<Request> parse_request(std::string_view payload, std::optional<std::uint64_t>& id);

nlohmann::json ok_reply(std::uint64_t id);
// {"id", "ok": false, "error": message, "kind": the error's kind (crosvisor/error.hpp)}
nlohmann::json error_reply(std::optional<std::uint64_t> id, const Error& error);
nlohmann::json info_json(const VmInfo& info);
nlohmann::json state_event(const VmEvent& event);
nlohmann::json console_event(const ConsoleLine& line);

// Client side: the reverse of state_event and info_json.
Expected<VmEvent> parse_state_event(const nlohmann::json& event);
Expected<VmInfo> parse_info(const nlohmann::json& info);

}  // namespace crosvisor::protocol
