#include "protocol/requests.hpp"

#include <algorithm>
#include <set>

#include "core/base64.hpp"

namespace crosvisor::protocol {
namespace {

using json = nlohmann::json;

Error refused(std::string message) {
  return Error{ErrorKind::protocol, std::move(message)};
}

// The fields of one request, read by the decoder of its type. Every field a decoder asks for
// is one the request may have (present or not); whatever else the request holds is refused. A
// field that is wrong is remembered (the first one) and read as its default, so that decoders
// read as plain lists of fields.
class Fields {
 public:
  Fields(const json& message, std::string_view op) : message_(message), op_(op) {}

  // Whether the request has the field (which it may have).
  bool present(const char* key) { return has(key); }
  // false when absent.
  bool flag(const char* key) {
    if (!has(key))
      return false;
    if (!message_[key].is_boolean()) {
      fail("'" + std::string(key) + "' must be true or false");
      return false;
    }
    return message_[key].get<bool>();
  }
  std::optional<std::uint32_t> number(const char* key, std::uint32_t high) {
    if (!has(key))
      return std::nullopt;
    const json& value = message_[key];
    if (!value.is_number_unsigned() || value.get<std::uint64_t>() > high) {
      fail("'" + std::string(key) + "' must be an integer from 0 to " + std::to_string(high));
      return std::nullopt;
    }
    return static_cast<std::uint32_t>(value.get<std::uint64_t>());
  }
  std::optional<std::uint64_t> big_number(const char* key) {
    if (!has(key))
      return std::nullopt;
    if (!message_[key].is_number_unsigned()) {
      fail("'" + std::string(key) + "' must be a non-negative integer");
      return std::nullopt;
    }
    return message_[key].get<std::uint64_t>();
  }
  // VM names, at most `max` of them.
  std::vector<std::string> vm_names(const char* key, std::size_t max) {
    if (!has(key))
      return {};
    const json& value = message_[key];
    if (!value.is_array() || value.size() > max) {
      fail("'" + std::string(key) + "' must be an array of at most " + std::to_string(max) +
           " VM names");
      return {};
    }
    std::vector<std::string> names;
    for (const auto& name : value) {
      if (!name.is_string() || !is_valid_vm_name(name.get<std::string>())) {
        fail("'" + std::string(key) + "' must hold VM names");
        return {};
      }
      names.push_back(name.get<std::string>());
    }
    return names;
  }
  Target target(const char* key) {
    if (!has(key)) {
      needs(key);
      return {};
    }
    auto target =
        message_[key].is_string()
            ? parse_target(message_[key].get<std::string>())
            : std::unexpected(refused("'" + std::string(key) + "' must be a VM name or CID"));
    if (!target) {
      fail(target.error().message);
      return {};
    }
    return *target;
  }
  // A description (an object): a VM's or a fleet's.
  json object(const char* key, const char* what) {
    if (!has(key)) {
      needs(key);
      return {};
    }
    if (!message_[key].is_object()) {
      fail("'" + std::string(key) + "' must be " + what);
      return {};
    }
    return message_[key];
  }
  // Empty when absent and not required.
  std::string fleet_name(const char* key, bool required) {
    if (!has(key)) {
      if (required)
        needs(key);
      return {};
    }
    if (!message_[key].is_string() || !is_valid_vm_name(message_[key].get<std::string>())) {
      fail("'" + std::string(key) + "' must be a fleet name");
      return {};
    }
    return message_[key].get<std::string>();
  }

  // A VM's name (not a CID: the console's requests name what the console reply gave).
  std::string vm_name(const char* key) {
    if (!has(key)) {
      needs(key);
      return {};
    }
    if (!message_[key].is_string() || !is_valid_vm_name(message_[key].get<std::string>())) {
      fail("'" + std::string(key) + "' must be a VM name");
      return {};
    }
    return message_[key].get<std::string>();
  }
  // Bytes, as base64 text; at most `max` of them.
  std::string bytes(const char* key, std::size_t max) {
    if (!has(key)) {
      needs(key);
      return {};
    }
    std::optional<std::string> decoded;
    if (message_[key].is_string())
      decoded = base64_decode(message_[key].get<std::string>());
    if (!decoded) {
      fail("'" + std::string(key) + "' must be base64 text");
      return {};
    }
    if (decoded->size() > max) {
      fail("'" + std::string(key) + "' holds " + std::to_string(decoded->size()) +
           " bytes, more than the " + std::to_string(max) + " one request may");
      return {};
    }
    return *decoded;
  }

  // The first wrong field, else the first field the request may not have.
  std::optional<Error> problem() const {
    if (problem_)
      return problem_;
    for (const auto& [key, value] : message_.items()) {
      if (key != "id" && key != "op" && known_.count(key) == 0)
        return refused("'" + key + "' is not a field of '" + op_ + "'");
    }
    return std::nullopt;
  }

  // A problem with how fields go together (the first problem found is the one told).
  void fail(std::string message) {
    if (!problem_)
      problem_ = refused(std::move(message));
  }

 private:
  bool has(const char* key) {
    known_.insert(key);
    return message_.contains(key);
  }
  void needs(const char* key) { fail("'" + op_ + "' needs '" + key + "'"); }

  const json& message_;
  std::string op_;
  std::set<std::string, std::less<>> known_;
  std::optional<Error> problem_;
};

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

// Each request type: its decoder and its encoder, side by side.

CreateRequest decode(Fields& fields, std::type_identity<CreateRequest>) {
  return {fields.object("vm", "the VM description (an object)"), fields.flag("detach")};
}
void encode(json& out, const CreateRequest& request) {
  out["vm"] = request.vm;
  out["detach"] = request.detach;
}

ListRequest decode(Fields& fields, std::type_identity<ListRequest>) {
  return {fields.flag("all_users"), fields.flag("dead")};
}
void encode(json& out, const ListRequest& request) {
  out["all_users"] = request.all_users;
  out["dead"] = request.dead;
}

StatsRequest decode(Fields& fields, std::type_identity<StatsRequest>) {
  return {fields.vm_names("names", 1024), fields.flag("all_users")};
}
void encode(json& out, const StatsRequest& request) {
  out["names"] = request.names;
  out["all_users"] = request.all_users;
}

RemoveRequest decode(Fields& fields, std::type_identity<RemoveRequest>) {
  return {fields.target("vm")};
}
void encode(json& out, const RemoveRequest& request) {
  out["vm"] = request.vm.text;
}

EventsRequest decode(Fields& fields, std::type_identity<EventsRequest>) {
  return {fields.big_number("since_ms"), fields.vm_names("names", 1024), fields.flag("all_users")};
}
void encode(json& out, const EventsRequest& request) {
  if (request.since_ms)
    out["since_ms"] = *request.since_ms;
  out["names"] = request.names;
  out["all_users"] = request.all_users;
}

InfoRequest decode(Fields& fields, std::type_identity<InfoRequest>) {
  return {fields.target("vm")};
}
void encode(json& out, const InfoRequest& request) {
  out["vm"] = request.vm.text;
}

StopRequest decode(Fields& fields, std::type_identity<StopRequest>) {
  return {fields.target("vm"), fields.flag("force"), fields.number("timeout_ms", kMaxTimeoutMs)};
}
void encode(json& out, const StopRequest& request) {
  out["vm"] = request.vm.text;
  out["force"] = request.force;
  if (request.timeout_ms)
    out["timeout_ms"] = *request.timeout_ms;
}

LogsRequest decode(Fields& fields, std::type_identity<LogsRequest>) {
  return {fields.target("vm"), fields.number("lines", kMaxLogLines).value_or(0),
          fields.flag("follow")};
}
void encode(json& out, const LogsRequest& request) {
  out["vm"] = request.vm.text;
  out["lines"] = request.lines;
  out["follow"] = request.follow;
}

SubscribeRequest decode(Fields& fields, std::type_identity<SubscribeRequest>) {
  return {fields.target("vm")};
}
void encode(json& out, const SubscribeRequest& request) {
  out["vm"] = request.vm.text;
}

ConsoleRequest decode(Fields& fields, std::type_identity<ConsoleRequest>) {
  // Writing is the default: a console is for typing into.
  ConsoleRequest request{fields.target("vm")};
  if (fields.present("write"))
    request.write = fields.flag("write");
  request.force = fields.flag("force");
  return request;
}
void encode(json& out, const ConsoleRequest& request) {
  out["vm"] = request.vm.text;
  out["write"] = request.write;
  out["force"] = request.force;
}

ConsoleInputRequest decode(Fields& fields, std::type_identity<ConsoleInputRequest>) {
  return {fields.vm_name("vm"), fields.bytes("data", kMaxConsoleInput)};
}
void encode(json& out, const ConsoleInputRequest& request) {
  out["vm"] = request.vm;
  out["data"] = base64_encode(request.bytes);
}

ConsoleDetachRequest decode(Fields& fields, std::type_identity<ConsoleDetachRequest>) {
  return {fields.vm_name("vm")};
}
void encode(json& out, const ConsoleDetachRequest& request) {
  out["vm"] = request.vm;
}

DumpRequest decode(Fields& fields, std::type_identity<DumpRequest>) {
  return {fields.target("vm"), fields.flag("file")};
}
void encode(json& out, const DumpRequest& request) {
  out["vm"] = request.vm.text;
  out["file"] = request.file;
}

PingRequest decode(Fields&, std::type_identity<PingRequest>) {
  return {};
}
void encode(json&, const PingRequest&) {}

ClusterEventsRequest decode(Fields& fields, std::type_identity<ClusterEventsRequest>) {
  return {fields.big_number("since_ms").value_or(0)};
}
void encode(json& out, const ClusterEventsRequest& request) {
  out["since_ms"] = request.since_ms;
}

HostsRequest decode(Fields&, std::type_identity<HostsRequest>) {
  return {};
}
void encode(json&, const HostsRequest&) {}

VersionRequest decode(Fields&, std::type_identity<VersionRequest>) {
  return {};
}
void encode(json&, const VersionRequest&) {}

FleetUpRequest decode(Fields& fields, std::type_identity<FleetUpRequest>) {
  FleetUpRequest request{fields.object("fleet", "the fleet description (an object)"),
                         fields.flag("foreground"), fields.flag("persist"), fields.flag("cluster")};
  if (request.cluster && (request.foreground || request.persist))
    fields.fail("a cluster fleet is neither held in the foreground nor persistent: etcd keeps it");
  return request;
}
void encode(json& out, const FleetUpRequest& request) {
  out["fleet"] = request.fleet;
  out["foreground"] = request.foreground;
  out["persist"] = request.persist;
  if (request.cluster)
    out["cluster"] = true;
}

FleetForgetRequest decode(Fields& fields, std::type_identity<FleetForgetRequest>) {
  return {fields.fleet_name("fleet", true)};
}
void encode(json& out, const FleetForgetRequest& request) {
  out["fleet"] = request.fleet;
}

FleetStatusRequest decode(Fields& fields, std::type_identity<FleetStatusRequest>) {
  const bool cluster = fields.flag("cluster");
  return {fields.fleet_name("fleet", cluster), fields.flag("all_users"), cluster};
}
void encode(json& out, const FleetStatusRequest& request) {
  if (!request.fleet.empty())
    out["fleet"] = request.fleet;
  out["all_users"] = request.all_users;
  if (request.cluster)
    out["cluster"] = true;
}

FleetDownRequest decode(Fields& fields, std::type_identity<FleetDownRequest>) {
  const bool all = fields.flag("all");
  FleetDownRequest request{fields.fleet_name("fleet", !all),
                           fields.flag("force"),
                           fields.number("timeout_ms", kMaxTimeoutMs),
                           all,
                           fields.flag("all_users"),
                           fields.flag("cluster")};
  if (all && !request.fleet.empty())
    fields.fail("'all' and 'fleet' exclude each other");
  return request;
}
void encode(json& out, const FleetDownRequest& request) {
  if (!request.all)
    out["fleet"] = request.fleet;
  out["force"] = request.force;
  if (request.timeout_ms)
    out["timeout_ms"] = *request.timeout_ms;
  out["all"] = request.all;
  out["all_users"] = request.all_users;
  if (request.cluster)
    out["cluster"] = true;
}

FleetRestartRequest decode(Fields& fields, std::type_identity<FleetRestartRequest>) {
  return {fields.fleet_name("fleet", true), fields.target("vm")};
}
void encode(json& out, const FleetRestartRequest& request) {
  out["fleet"] = request.fleet;
  out["vm"] = request.vm.text;
}

// The alternative of RequestBody whose op is `op`, decoded.
template <std::size_t I = 0>
std::optional<RequestBody> decode_op(std::string_view op, Fields& fields) {
  if constexpr (I == std::variant_size_v<RequestBody>) {
    return std::nullopt;
  } else {
    using Alternative = std::variant_alternative_t<I, RequestBody>;
    if (op != Alternative::op)
      return decode_op<I + 1>(op, fields);
    return RequestBody(decode(fields, std::type_identity<Alternative>{}));
  }
}

}  // namespace

Expected<Target> parse_target(std::string_view text) {
  if (text.empty())
    return std::unexpected(refused("'vm' must be a VM name or CID"));
  Target target;
  target.text = std::string(text);
  if (std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    if (text.size() > 10 || std::stoull(target.text) > 0xffffffffULL)
      return std::unexpected(refused("'vm': CID out of range"));
    target.cid = static_cast<std::uint32_t>(std::stoull(target.text));
  }
  return target;
}

std::string_view op_of(const RequestBody& body) {
  return std::visit([](const auto& request) { return request.op; }, body);
}

bool takes_fds(const RequestBody& body) {
  return std::holds_alternative<CreateRequest>(body) ||
         std::holds_alternative<FleetUpRequest>(body) || std::holds_alternative<DumpRequest>(body);
}

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
  if (!message.contains("op") || !message["op"].is_string())
    return std::unexpected(refused("the request needs an 'op' string"));
  const std::string op = message["op"].get<std::string>();
  Fields fields(message, op);
  auto body = decode_op(op, fields);
  if (!body)
    return std::unexpected(refused("unknown op '" + op + "'"));
  if (auto problem = fields.problem())
    return std::unexpected(*problem);
  return Request{*id, std::move(*body)};
}

json encode_request(std::uint64_t id, const RequestBody& body) {
  json message = json::object();
  std::visit([&](const auto& request) { encode(message, request); }, body);
  message["id"] = id;
  message["op"] = op_of(body);
  return message;
}

}  // namespace crosvisor::protocol
