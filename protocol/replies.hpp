// Replies and events on the control socket (docs/protocol.md). Pure logic.
//   reply:   {"id": N, "ok": true, ...} or {"id": N, "ok": false, "error": "...", "kind": "..."}
//   event:   {"event": "state", "vm", "state", "reason"?, "detail", "pid"?, "cid"?} or
//            {"event": "console", "vm", "line"}, {"event": "console_data", "vm", "data"},
//            {"event": "console_writer_lost", "vm"}
// Requests: protocol/requests.hpp.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "crosvisor/error.hpp"
#include "crosvisor/vm_event.hpp"

namespace crosvisor::protocol {

nlohmann::json ok_reply(std::uint64_t id);
// {"id", "ok": false, "error": message, "kind": the error's kind (crosvisor/error.hpp)}
nlohmann::json error_reply(std::optional<std::uint64_t> id, const Error& error);
// A VM's description (`info` and `list`): {"name", "state", "vmm", "debug", "pid", "cid",
// "uptime_ms", "started_at_ms", "ended_at_ms", "owner_uid", "memory_mib", "cpus", "kernel",
// "disks", "console_log", "gdb_port", "last_dump", "nics", "fleet", "reason", "detail",
// "restarts", "ready_on"}, written as JSON text onto `out` (a list of 10 000 is built without a
// document).
// With `uptime_ms`, that uptime instead of the info's own (a kept snapshot's moved on).
void append_info(std::string& out, const VmInfo& info);
void append_info(std::string& out, const VmInfo& info, std::int64_t uptime_ms);
// {"id", "ok": true, "vm": the description}
std::string info_reply(std::uint64_t id, const VmInfo& info);
// One VM of a list: its info, and its uptime as the list is written.
struct ListedInfo {
  const VmInfo* info;
  std::int64_t uptime_ms;
};
// {"id", "ok": true, "vms": [the descriptions, in the order given]}
std::string vms_reply(std::uint64_t id, const std::vector<ListedInfo>& vms);
// {"name", "fleet", "owner_uid", "state", "vmm", "pid", "uptime_ms", "restarts", "memory_mib",
// "cpus", "cpu_usec", "rss_bytes", "memory_bytes", "memory_limit_bytes", "read_bytes",
// "write_bytes", "tasks", "source": "cgroup" | "proc" | null}: what `stats` answers, per VM
// (null for what is not counted).
nlohmann::json stats_json(const VmStats& stats);
nlohmann::json state_event(const VmEvent& event);
nlohmann::json console_event(const std::string& vm, std::string_view line);
// {"event": "console_data", "vm", "data": the bytes as base64}
nlohmann::json console_data_event(const ConsoleBytes& bytes);
// {"event": "console_writer_lost", "vm"}
nlohmann::json console_writer_lost_event(const ConsoleWriterLost& lost);

// {"event": "vm", "at_ms", "vm", "kind", "state", "detail", "fleet", "owner_uid", and "reason",
// "pid", "cid" when known}: what `events` streams (docs/cli.md lists the kinds).
nlohmann::json supervisor_event(const SupervisorEvent& event);

// Client side: the reverse of state_event, supervisor_event and append_info.
Expected<SupervisorEvent> parse_supervisor_event(const nlohmann::json& event);
Expected<VmEvent> parse_state_event(const nlohmann::json& event);
Expected<VmInfo> parse_info(const nlohmann::json& info);

}  // namespace crosvisor::protocol
