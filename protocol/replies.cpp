#include "protocol/replies.hpp"

#include "core/base64.hpp"
#include "protocol/json_text.hpp"

namespace crosvisor::protocol {
namespace {

using json = nlohmann::json;

Error malformed(std::string message) {
  return Error{ErrorKind::protocol, std::move(message)};
}

}  // namespace

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

void append_info(std::string& out, const VmInfo& info) {
  append_info(out, info, info.uptime_ms);
}

void append_info(std::string& out, const VmInfo& info, std::int64_t uptime_ms) {
  // Keys in nlohmann's order (sorted), so that the text is what a document would print.
  // One key and its value to a line:
  // clang-format off
  JsonText text(out);
  text.begin_object()
      .key("cid").value(info.cid)
      .key("console_log").text_or_null(info.console_log)
      .key("cpus").value(info.cpus)
      .key("debug").value(to_string(info.debug))
      .key("detail").value(info.detail)
      .key("disks")
      .begin_array();
  for (const auto& disk : info.disks)
    text.value(disk);
  text.end_array()
      .key("ended_at_ms").value(info.ended_at)
      .key("fleet").text_or_null(info.fleet)
      .key("gdb_port").value(info.gdb_port)
      .key("kernel").value(info.kernel)
      .key("last_dump").text_or_null(info.last_dump)
      .key("memory_mib").value(info.memory_mib)
      .key("name").value(info.name)
      .key("nics")
      .begin_array();
  for (const auto& nic : info.nics) {
    text.begin_object()
        .key("address").value(nic.address)
        .key("mac").value(nic.mac)
        .key("network").value(nic.network)
        .end_object();
  }
  text.end_array()
      .key("owner_uid").value(info.owner_uid)
      .key("pid").value(info.pid)
      .key("ready_on").text_or_null(info.ready_on)
      .key("reason");
  if (info.reason)
    text.value(to_string(*info.reason));
  else
    text.null();
  text.key("restarts").value(info.restarts)
      .key("started_at_ms").value(info.started_at)
      .key("state").value(to_string(info.state))
      .key("uptime_ms").value(uptime_ms)
      .key("vmm").value(to_string(info.vmm))
      .end_object();
  // clang-format on
}

std::string info_reply(std::uint64_t id, const VmInfo& info) {
  std::string out;
  JsonText(out).begin_object().key("id").value(id).key("ok").value(true).key("vm");
  append_info(out, info);
  out += '}';
  return out;
}

std::string vms_reply(std::uint64_t id, const std::vector<ListedInfo>& vms) {
  std::string out;
  out.reserve(64 + 400 * vms.size());
  JsonText(out).begin_object().key("id").value(id).key("ok").value(true).key("vms");
  out += '[';
  for (std::size_t i = 0; i < vms.size(); ++i) {
    if (i != 0)
      out += ',';
    append_info(out, *vms[i].info, vms[i].uptime_ms);
  }
  out += "]}";
  return out;
}

json stats_json(const VmStats& stats) {
  const VmUsage& usage = stats.usage;
  return {{"name", stats.info.name},
          {"fleet", stats.info.fleet.empty() ? json(nullptr) : json(stats.info.fleet)},
          {"owner_uid", or_null(stats.info.owner_uid)},
          {"state", to_string(stats.info.state)},
          {"vmm", to_string(stats.info.vmm)},
          {"pid", or_null(stats.info.pid)},
          {"uptime_ms", stats.info.uptime_ms},
          {"restarts", stats.info.restarts},
          {"memory_mib", stats.info.memory_mib},
          {"cpus", stats.info.cpus},
          {"cpu_usec", or_null(usage.cpu_usec)},
          {"rss_bytes", or_null(usage.rss_bytes)},
          {"memory_bytes", or_null(usage.memory_bytes)},
          {"memory_limit_bytes", or_null(usage.memory_limit_bytes)},
          {"read_bytes", or_null(usage.read_bytes)},
          {"write_bytes", or_null(usage.write_bytes)},
          {"tasks", or_null(usage.tasks)},
          {"source", !stats.info.pid ? json(nullptr) : json(usage.cgroup ? "cgroup" : "proc")}};
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

json supervisor_event(const SupervisorEvent& event) {
  json message = state_event(event.event);
  message["event"] = "vm";
  message["at_ms"] = event.at_ms;
  message["kind"] = event.kind;
  message["fleet"] = event.fleet.empty() ? json(nullptr) : json(event.fleet);
  message["owner_uid"] = event.owner ? json(*event.owner) : json(nullptr);
  return message;
}

Expected<SupervisorEvent> parse_supervisor_event(const json& message) {
  auto state = parse_state_event(message);
  if (!state)
    return std::unexpected(state.error());
  SupervisorEvent event;
  event.event = std::move(*state);
  try {
    event.at_ms = message.at("at_ms").get<std::int64_t>();
    event.kind = message.at("kind").get<std::string>();
    if (message.contains("fleet") && message["fleet"].is_string())
      event.fleet = message["fleet"].get<std::string>();
    if (message.contains("owner_uid") && message["owner_uid"].is_number_unsigned())
      event.owner = message["owner_uid"].get<std::uint32_t>();
  } catch (const json::exception& e) {
    return std::unexpected(malformed(std::string("malformed event: ") + e.what()));
  }
  return event;
}

json console_event(const std::string& vm, std::string_view line) {
  return {{"event", "console"}, {"vm", vm}, {"line", line}};
}

json console_data_event(const ConsoleBytes& bytes) {
  return {{"event", "console_data"}, {"vm", bytes.vm}, {"data", base64_encode(bytes.bytes)}};
}

json console_writer_lost_event(const ConsoleWriterLost& lost) {
  return {{"event", "console_writer_lost"}, {"vm", lost.vm}};
}

Expected<VmEvent> parse_state_event(const json& event) {
  VmEvent parsed;
  try {
    parsed.vm = event.at("vm").get<std::string>();
    parsed.detail = event.value("detail", std::string());
    const auto state = vm_state_named(event.at("state").get<std::string>());
    if (!state)
      return std::unexpected(malformed("unknown state in event"));
    parsed.state = *state;
    if (event.contains("reason")) {
      parsed.reason = death_reason_named(event["reason"].get<std::string>());
      if (!parsed.reason)
        return std::unexpected(malformed("unknown death reason in event"));
    }
    if (event.contains("pid"))
      parsed.pid = event["pid"].get<pid_t>();
    if (event.contains("cid"))
      parsed.cid = event["cid"].get<std::uint32_t>();
  } catch (const json::exception& e) {
    return std::unexpected(malformed(std::string("malformed event: ") + e.what()));
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
      return std::unexpected(malformed("unknown state, VMM or debug level in info"));
    parsed.state = *state;
    parsed.vmm = *vmm;
    parsed.debug = *debug;
    optional_of("pid", parsed.pid);
    optional_of("cid", parsed.cid);
    parsed.uptime_ms = info.at("uptime_ms").get<std::int64_t>();
    optional_of("started_at_ms", parsed.started_at);
    optional_of("ended_at_ms", parsed.ended_at);
    optional_of("owner_uid", parsed.owner_uid);
    optional_of("gdb_port", parsed.gdb_port);
    if (info.contains("last_dump") && info["last_dump"].is_string())
      parsed.last_dump = info["last_dump"].get<std::string>();
    parsed.memory_mib = info.value("memory_mib", 0u);
    parsed.cpus = info.value("cpus", 0u);
    parsed.kernel = info.value("kernel", std::string());
    if (info.contains("disks"))
      parsed.disks = info["disks"].get<std::vector<std::string>>();
    if (info.contains("console_log") && info["console_log"].is_string())
      parsed.console_log = info["console_log"].get<std::string>();
    if (info.contains("fleet") && info["fleet"].is_string())
      parsed.fleet = info["fleet"].get<std::string>();
    if (info.contains("ready_on") && info["ready_on"].is_string())
      parsed.ready_on = info["ready_on"].get<std::string>();
    if (info.contains("nics")) {
      for (const auto& nic : info["nics"]) {
        parsed.nics.push_back({nic.at("network").get<std::string>(),
                               nic.at("address").get<std::string>(),
                               nic.at("mac").get<std::string>()});
      }
    }
    if (info.contains("reason") && info["reason"].is_string()) {
      parsed.reason = death_reason_named(info["reason"].get<std::string>());
      if (!parsed.reason)
        return std::unexpected(malformed("unknown death reason in info"));
    }
    parsed.detail = info.value("detail", std::string());
    parsed.restarts = info.value("restarts", 0u);
  } catch (const json::exception& e) {
    return std::unexpected(malformed(std::string("malformed info: ") + e.what()));
  }
  return parsed;
}

}  // namespace crosvisor::protocol
