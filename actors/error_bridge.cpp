#include "crosvisor/error_bridge.hpp"

#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/message.hpp>
#include <caf/sec.hpp>

namespace crosvisor {
namespace {

constexpr caf::atom_value kCategory = caf::atom("crosvisor");

std::string message_of(const caf::message& context) {
  if (context.match_elements<std::string>())
    return context.get_as<std::string>(0);
  return {};
}

}  // namespace

caf::error to_caf_error(ErrorKind kind, std::string message) {
  return caf::error(static_cast<std::uint8_t>(kind), kCategory,
                    caf::make_message(std::move(message)));
}

caf::error to_caf_error(const Error& error) {
  return to_caf_error(error.kind, error.message);
}

Error from_caf_error(const caf::error& error) {
  if (error.category() == kCategory) {
    const auto code = error.code();
    const auto kind = code <= static_cast<std::uint8_t>(ErrorKind::interrupted)
                          ? static_cast<ErrorKind>(code)
                          : ErrorKind::io;
    return Error{kind, message_of(error.context())};
  }
  if (error.category() == caf::atom("system")) {
    switch (static_cast<caf::sec>(error.code())) {
      case caf::sec::request_timeout:
        return Error{ErrorKind::unavailable, "no answer in time"};
      case caf::sec::request_receiver_down:
        return Error{ErrorKind::unavailable, "the actor asked is gone"};
      default:
        break;
    }
  }
  return Error{ErrorKind::io, caf::to_string(error)};
}

void add_error_category(caf::actor_system_config& config) {
  config.add_error_category(kCategory,
                            [](std::uint8_t, caf::atom_value, const caf::message& context) {
                              return message_of(context);
                            });
}

}  // namespace crosvisor
