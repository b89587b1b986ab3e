#include "vmm/qemu/qmp_protocol.hpp"

#include <nlohmann/json.hpp>

namespace crosvisor::vmm::qmp {
namespace {

// A member that should be a string; QEMU's output is not trusted to have the types QAPI promises
// (a guest that took over QEMU writes what it likes), and nlohmann's value() throws on a mismatch.
std::string string_member(const nlohmann::json& object, const char* key, std::string fallback) {
  const auto found = object.find(key);
  return found != object.end() && found->is_string() ? found->get<std::string>() : fallback;
}

std::optional<lifecycle::GuestNotice> notice_of(const std::string& event,
                                                const nlohmann::json& data) {
  if (event == "GUEST_PANICKED")
    return lifecycle::GuestNotice::panicked;
  if (event != "SHUTDOWN" || !data.is_object())
    return std::nullopt;
  // SHUTDOWN's reason (QAPI ShutdownCause): only the guest-* causes say something about the
  // guest; host-qmp-quit, host-signal and the like are the supervisor's own doing.
  const std::string reason = string_member(data, "reason", "");
  if (reason == "guest-shutdown")
    return lifecycle::GuestNotice::powered_off;
  if (reason == "guest-reset")
    return lifecycle::GuestNotice::reset;
  if (reason == "guest-panic")
    return lifecycle::GuestNotice::panicked;
  return std::nullopt;
}

}  // namespace

Message parse(std::string_view line) {
  Message message;
  const auto json = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object())
    return message;
  if (json.contains("QMP")) {
    message.kind = Message::Kind::greeting;
  } else if (const auto event = string_member(json, "event", ""); !event.empty()) {
    message.kind = Message::Kind::event;
    message.event = event;
    message.notice = notice_of(message.event, json.value("data", nlohmann::json()));
  } else if (json.contains("return") || json.contains("error")) {
    message.kind = Message::Kind::reply;
    if (json.contains("id") && json["id"].is_number_unsigned())
      message.id = json["id"].get<std::uint64_t>();
    if (json.contains("error")) {
      const auto& error = json["error"];
      message.error = error.is_object() ? string_member(error, "desc", "unknown error")
                                        : std::string("unknown error");
    }
  }
  return message;
}

std::string command_line(std::string_view command, std::uint64_t id,
                         std::string_view arguments_json) {
  nlohmann::json line{{"execute", command}, {"id", id}};
  if (!arguments_json.empty())
    line["arguments"] = nlohmann::json::parse(arguments_json);
  return line.dump() + "\r\n";
}

std::string_view command_for(ControlRequest request) {
  switch (request) {
    case ControlRequest::powerdown:
      return "system_powerdown";
    case ControlRequest::quit:
      break;
  }
  return "quit";
}

}  // namespace crosvisor::vmm::qmp
