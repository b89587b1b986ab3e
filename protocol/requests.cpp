#include "protocol/requests.hpp"

#include <algorithm>
#include <map>
#include <vector>

namespace crosvisor::protocol {
namespace {

using json = nlohmann::json;

struct OpSpec {
  Op op;
  std::vector<const char*> fields;  // besides id and op
};

const std::map<std::string, OpSpec, std::less<>>& ops() {
  static const std::map<std::string, OpSpec, std::less<>> table = {
      {"create", {Op::create, {"vm"}}},
      {"list", {Op::list, {"all"}}},
      {"info", {Op::info, {"vm"}}},
      {"stop", {Op::stop, {"vm", "force", "timeout_ms"}}},
      {"logs", {Op::logs, {"vm", "lines", "follow"}}},
      {"subscribe", {Op::subscribe, {"vm"}}},
      {"ping", {Op::ping, {}}},
      {"version", {Op::version, {}}},
      {"fleet_up", {Op::fleet_up, {"fleet", "foreground"}}},
      {"fleet_status", {Op::fleet_status, {"fleet", "all"}}},
      {"fleet_down", {Op::fleet_down, {"fleet", "timeout_ms"}}},
      {"fleet_restart", {Op::fleet_restart, {"fleet", "vm"}}},
  };
  return table;
}

Error refused(std::string message) {
  return Error{ErrorKind::protocol, std::move(message)};
}

Expected<Target> parse_target(const json& value) {
  if (!value.is_string() || value.get<std::string>().empty())
    return std::unexpected(refused("'vm' must be a VM name or CID"));
  Target target;
  target.name = value.get<std::string>();
  if (std::all_of(target.name.begin(), target.name.end(),
                  [](char c) { return c >= '0' && c <= '9'; })) {
    if (target.name.size() > 10)
      return std::unexpected(refused("'vm': CID out of range"));
    const auto cid = std::stoull(target.name);
    if (cid > 0xffffffffULL)
      return std::unexpected(refused("'vm': CID out of range"));
    target.cid = static_cast<std::uint32_t>(cid);
  }
  return target;
}

template <class T>
Expected<T> number(const json& value, const char* field, T high) {
  if (!value.is_number_unsigned() || value.get<std::uint64_t>() > high)
    return std::unexpected(refused(std::string("'") + field + "' must be an integer from 0 to " +
                                   std::to_string(high)));
  return static_cast<T>(value.get<std::uint64_t>());
}

Expected<bool> flag(const json& value, const char* field) {
  if (!value.is_boolean())
    return std::unexpected(refused(std::string("'") + field + "' must be true or false"));
  return value.get<bool>();
}

// How deeply arrays and objects nest in `payload` (outside strings): a client could otherwise send
// a megabyte of brackets, and copying or destroying that value recurses once per level.
std::size_t nesting_depth(std::string_view payload) {
  std::size_t depth = 0;
  std::size_t deepest = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : payload) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

}  // namespace

Expected<Request> parse_request(std::string_view payload, std::optional<std::uint64_t>& id) {
  if (nesting_depth(payload) > kMaxNesting)
    return std::unexpected(
        refused("the request nests deeper than " + std::to_string(kMaxNesting) + " levels"));
  const json message = json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (message.is_discarded())
    return std::unexpected(refused("the request is not JSON"));
  if (!message.is_object())
    return std::unexpected(refused("the request must be a JSON object"));
  if (!message.contains("id") || !message["id"].is_number_unsigned())
    return std::unexpected(refused("the request needs an 'id': a non-negative integer"));
  id = message["id"].get<std::uint64_t>();
  Request request;
  request.id = *id;
  if (!message.contains("op") || !message["op"].is_string())
    return std::unexpected(refused("the request needs an 'op' string"));
  const auto op = ops().find(message["op"].get<std::string>());
  if (op == ops().end())
    return std::unexpected(refused("unknown op '" + message["op"].get<std::string>() + "'"));
  request.op = op->second.op;
  for (const auto& [key, value] : message.items()) {
    if (key == "id" || key == "op")
      continue;
    const auto& allowed = op->second.fields;
    if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; }))
      return std::unexpected(refused("'" + key + "' is not a field of '" + op->first + "'"));
  }
  const bool fleet_op = request.op == Op::fleet_up || request.op == Op::fleet_status ||
                        request.op == Op::fleet_down || request.op == Op::fleet_restart;
  const bool needs_vm = request.op != Op::list && request.op != Op::ping &&
                        request.op != Op::version && (!fleet_op || request.op == Op::fleet_restart);
  const bool needs_fleet = fleet_op && request.op != Op::fleet_status;
  if (needs_fleet && !message.contains("fleet"))
    return std::unexpected(refused("'" + op->first + "' needs 'fleet'"));
  if (request.op == Op::fleet_up) {
    if (!message["fleet"].is_object())
      return std::unexpected(refused("'fleet' must be the fleet description (an object)"));
    request.fleet = message["fleet"];
  } else if (fleet_op && message.contains("fleet")) {
    if (!message["fleet"].is_string() || !is_valid_vm_name(message["fleet"].get<std::string>()))
      return std::unexpected(refused("'fleet' must be a fleet name"));
    request.fleet_name = message["fleet"].get<std::string>();
  }
  if (message.contains("foreground")) {
    auto foreground = flag(message["foreground"], "foreground");
    if (!foreground)
      return std::unexpected(foreground.error());
    request.foreground = *foreground;
  }
  if (needs_vm && !message.contains("vm"))
    return std::unexpected(refused("'" + op->first + "' needs 'vm'"));
  if (request.op == Op::create) {
    if (!message["vm"].is_object())
      return std::unexpected(refused("'vm' must be the VM description (an object)"));
    request.vm = message["vm"];
  } else if (needs_vm) {
    auto target = parse_target(message["vm"]);
    if (!target)
      return std::unexpected(target.error());
    request.target = *target;
  }
  if (message.contains("all")) {
    auto all = flag(message["all"], "all");
    if (!all)
      return std::unexpected(all.error());
    request.all = *all;
  }
  if (message.contains("force")) {
    auto force = flag(message["force"], "force");
    if (!force)
      return std::unexpected(force.error());
    request.force = *force;
  }
  if (message.contains("follow")) {
    auto follow = flag(message["follow"], "follow");
    if (!follow)
      return std::unexpected(follow.error());
    request.follow = *follow;
  }
  if (message.contains("timeout_ms")) {
    auto timeout = number<std::uint32_t>(message["timeout_ms"], "timeout_ms", 3'600'000);
    if (!timeout)
      return std::unexpected(timeout.error());
    request.timeout_ms = *timeout;
  }
  if (message.contains("lines")) {
    auto lines = number<std::uint32_t>(message["lines"], "lines", 100'000);
    if (!lines)
      return std::unexpected(lines.error());
    request.lines = *lines;
  }
  return request;
}

json ok_reply(std::uint64_t id) {
  return {{"id", id}, {"ok", true}};
}

json error_reply(std::optional<std::uint64_t> id, std::string_view message) {
  json reply = {{"ok", false}, {"error", message}};
  reply["id"] = id ? json(*id) : json(nullptr);
  return reply;
}

json info_json(const VmInfo& info) {
  return {{"name", info.name},
          {"state", std::string(to_string(info.state))},
          {"vmm", std::string(to_string(info.vmm))},
          {"debug", std::string(to_string(info.debug))},
          {"pid", info.pid},
          {"cid", info.cid},
          {"uptime_ms", info.uptime_ms},
          {"owner_uid", info.owner_uid ? json(*info.owner_uid) : json(nullptr)}};
}

json state_event(const VmEvent& event) {
  json message = {{"event", "state"},
                  {"vm", event.vm},
                  {"state", std::string(to_string(event.state))},
                  {"detail", event.detail}};
  if (event.reason)
    message["reason"] = std::string(to_string(*event.reason));
  return message;
}

json console_event(const ConsoleLine& line) {
  return {{"event", "console"}, {"vm", line.vm}, {"line", line.text}};
}

namespace {

template <class Enum, std::size_t N>
std::optional<Enum> enum_named(const std::string& name, const Enum (&values)[N]) {
  for (Enum value : values) {
    if (to_string(value) == name)
      return value;
  }
  return std::nullopt;
}

constexpr VmState kStates[] = {VmState::created, VmState::starting, VmState::running,
                               VmState::ready,   VmState::stopping, VmState::dead};
constexpr DeathReason kReasons[] = {
    DeathReason::shutdown, DeathReason::start_failed, DeathReason::reboot,
    DeathReason::crash,    DeathReason::guest_panic,  DeathReason::watchdog_reboot,
    DeathReason::killed,   DeathReason::error,        DeathReason::unknown};

}  // namespace

Expected<VmEvent> parse_state_event(const json& event) {
  VmEvent parsed;
  try {
    parsed.vm = event.at("vm").get<std::string>();
    parsed.detail = event.value("detail", std::string());
    const auto state = enum_named(event.at("state").get<std::string>(), kStates);
    if (!state)
      return std::unexpected(refused("unknown state in event"));
    parsed.state = *state;
    if (event.contains("reason")) {
      parsed.reason = enum_named(event["reason"].get<std::string>(), kReasons);
      if (!parsed.reason)
        return std::unexpected(refused("unknown death reason in event"));
    }
  } catch (const json::exception& e) {
    return std::unexpected(refused(std::string("malformed event: ") + e.what()));
  }
  return parsed;
}

Expected<VmInfo> parse_info(const json& info) {
  VmInfo parsed;
  try {
    parsed.name = info.at("name").get<std::string>();
    const auto state = enum_named(info.at("state").get<std::string>(), kStates);
    if (!state)
      return std::unexpected(refused("unknown state in info"));
    parsed.state = *state;
    parsed.vmm = info.at("vmm").get<std::string>() == "crosvm" ? VmmKind::crosvm : VmmKind::qemu;
    parsed.debug =
        info.at("debug").get<std::string>() == "full" ? DebugLevel::full : DebugLevel::none;
    parsed.pid = info.at("pid").get<pid_t>();
    parsed.cid = info.at("cid").get<std::uint32_t>();
    parsed.uptime_ms = info.at("uptime_ms").get<std::int64_t>();
    if (!info.at("owner_uid").is_null())
      parsed.owner_uid = info["owner_uid"].get<std::uint32_t>();
  } catch (const json::exception& e) {
    return std::unexpected(refused(std::string("malformed info: ") + e.what()));
  }
  return parsed;
}

}  // namespace crosvisor::protocol
