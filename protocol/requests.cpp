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
      {"list", {Op::list, {"all_users"}}},
      {"info", {Op::info, {"vm"}}},
      {"stop", {Op::stop, {"vm", "force", "timeout_ms"}}},
      {"logs", {Op::logs, {"vm", "lines", "follow"}}},
      {"subscribe", {Op::subscribe, {"vm"}}},
      {"ping", {Op::ping, {}}},
      {"version", {Op::version, {}}},
      {"fleet_up", {Op::fleet_up, {"fleet", "foreground"}}},
      {"fleet_status", {Op::fleet_status, {"fleet", "all_users"}}},
      {"fleet_down", {Op::fleet_down, {"fleet", "timeout_ms", "force"}}},
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
  if (message.contains("all_users")) {
    auto all = flag(message["all_users"], "all_users");
    if (!all)
      return std::unexpected(all.error());
    request.all_users = *all;
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

json error_reply(std::optional<std::uint64_t> id, const Error& error) {
  json reply = {{"ok", false}, {"error", error.message}, {"kind", kind_name(error.kind)}};
  reply["id"] = id ? json(*id) : json(nullptr);
  return reply;
}

namespace {

template <class T>
json or_null(const std::optional<T>& value) {
  return value ? json(*value) : json(nullptr);
}

}  // namespace

json info_json(const VmInfo& info) {
  json out = {{"name", info.name},
              {"state", to_string(info.state)},
              {"vmm", to_string(info.vmm)},
              {"debug", to_string(info.debug)},
              {"pid", or_null(info.pid)},
              {"cid", or_null(info.cid)},
              {"uptime_ms", info.uptime_ms},
              {"started_at_ms", or_null(info.started_at)},
              {"owner_uid", or_null(info.owner_uid)},
              {"memory_mib", info.memory_mib},
              {"cpus", info.cpus},
              {"kernel", info.kernel},
              {"disks", info.disks},
              {"console_log", info.console_log.empty() ? json(nullptr) : json(info.console_log)},
              {"fleet", info.fleet.empty() ? json(nullptr) : json(info.fleet)},
              {"reason", info.reason ? json(to_string(*info.reason)) : json(nullptr)},
              {"detail", info.detail}};
  return out;
}

json state_event(const VmEvent& event) {
  json message = {{"event", "state"},
                  {"vm", event.vm},
                  {"state", to_string(event.state)},
                  {"detail", event.detail}};
  if (event.reason)
    message["reason"] = to_string(*event.reason);
  if (event.pid)
    message["pid"] = *event.pid;
  if (event.cid)
    message["cid"] = *event.cid;
  return message;
}

json console_event(const ConsoleLine& line) {
  return {{"event", "console"}, {"vm", line.vm}, {"line", line.text}};
}

Expected<VmEvent> parse_state_event(const json& event) {
  VmEvent parsed;
  try {
    parsed.vm = event.at("vm").get<std::string>();
    parsed.detail = event.value("detail", std::string());
    const auto state = vm_state_named(event.at("state").get<std::string>());
    if (!state)
      return std::unexpected(refused("unknown state in event"));
    parsed.state = *state;
    if (event.contains("reason")) {
      parsed.reason = death_reason_named(event["reason"].get<std::string>());
      if (!parsed.reason)
        return std::unexpected(refused("unknown death reason in event"));
    }
    if (event.contains("pid"))
      parsed.pid = event["pid"].get<pid_t>();
    if (event.contains("cid"))
      parsed.cid = event["cid"].get<std::uint32_t>();
  } catch (const json::exception& e) {
    return std::unexpected(refused(std::string("malformed event: ") + e.what()));
  }
  return parsed;
}

Expected<VmInfo> parse_info(const json& info) {
  VmInfo parsed;
  const auto optional_of = [&]<class T>(const char* key, std::optional<T>& into) {
    if (info.contains(key) && !info[key].is_null())
      into = info[key].get<T>();
  };
  try {
    parsed.name = info.at("name").get<std::string>();
    const auto state = vm_state_named(info.at("state").get<std::string>());
    const auto vmm = vmm_kind_named(info.at("vmm").get<std::string>());
    const auto debug = debug_level_named(info.at("debug").get<std::string>());
    if (!state || !vmm || !debug)
      return std::unexpected(refused("unknown state, VMM or debug level in info"));
    parsed.state = *state;
    parsed.vmm = *vmm;
    parsed.debug = *debug;
    optional_of("pid", parsed.pid);
    optional_of("cid", parsed.cid);
    parsed.uptime_ms = info.at("uptime_ms").get<std::int64_t>();
    optional_of("started_at_ms", parsed.started_at);
    optional_of("owner_uid", parsed.owner_uid);
    parsed.memory_mib = info.value("memory_mib", 0u);
    parsed.cpus = info.value("cpus", 0u);
    parsed.kernel = info.value("kernel", std::string());
    if (info.contains("disks"))
      parsed.disks = info["disks"].get<std::vector<std::string>>();
    if (info.contains("console_log") && info["console_log"].is_string())
      parsed.console_log = info["console_log"].get<std::string>();
    if (info.contains("fleet") && info["fleet"].is_string())
      parsed.fleet = info["fleet"].get<std::string>();
    if (info.contains("reason") && info["reason"].is_string()) {
      parsed.reason = death_reason_named(info["reason"].get<std::string>());
      if (!parsed.reason)
        return std::unexpected(refused("unknown death reason in info"));
    }
    parsed.detail = info.value("detail", std::string());
  } catch (const json::exception& e) {
    return std::unexpected(refused(std::string("malformed info: ") + e.what()));
  }
  return parsed;
}

}  // namespace crosvisor::protocol
