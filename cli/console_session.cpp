#include "cli/console_session.hpp"

#include <unistd.h>

#include <iostream>

#include "core/base64.hpp"

namespace crosvisor::cli {

Expected<ConsoleSession> ConsoleSession::attach(
    DaemonClient& client, const protocol::Target& vm, bool force,
    const std::function<void(const nlohmann::json&)>& on_event) {
  auto reply =
      client.call(protocol::ConsoleRequest{.vm = vm, .write = true, .force = force}, on_event);
  if (!reply)
    return std::unexpected(reply.error());
  return ConsoleSession(client, reply->value("vm", vm.text), RawTerminal::enter(STDIN_FILENO));
}

void ConsoleSession::say(const std::string& line) const {
  // Raw mode does not turn "\n" into a new line at the left margin.
  std::cerr << (raw() ? "\r" + line + "\r\n" : line + "\n") << std::flush;
}

bool ConsoleSession::on_event(const nlohmann::json& event) {
  const std::string kind = event.value("event", "");
  if (event.value("vm", "") != vm_)
    return false;
  if (kind == "console_data") {
    bytes_seen_ = true;
    auto bytes = base64_decode(event.value("data", ""));
    if (!bytes)
      return true;
    std::size_t written = 0;
    while (written < bytes->size()) {
      const ssize_t n = ::write(STDOUT_FILENO, bytes->data() + written, bytes->size() - written);
      if (n <= 0)
        break;  // stdout is gone: nothing to show it on
      written += static_cast<std::size_t>(n);
    }
    return true;
  }
  if (kind == "console_writer_lost") {
    writer_ = false;
    say("vm " + vm_ +
        ": another console took the input over (--force); this one only shows the output now "
        "(Ctrl-] leaves)");
    return true;
  }
  return false;
}

bool ConsoleSession::on_stdin() {
  char buffer[4096];
  const ssize_t n = ::read(STDIN_FILENO, buffer, sizeof(buffer));
  if (n <= 0) {
    reading_stdin_ = false;  // end of input: what the guest prints is still shown
    return true;
  }
  std::string_view keys(buffer, static_cast<std::size_t>(n));
  const auto escape = keys.find(kConsoleEscape);
  const std::string_view typed = keys.substr(0, escape);
  if (writer_ && !typed.empty())
    (void)client_->send(protocol::ConsoleInputRequest{vm_, std::string(typed)});
  if (escape == std::string_view::npos)
    return true;
  detach();
  return false;
}

void ConsoleSession::detach() {
  if (!attached_)
    return;
  attached_ = false;
  (void)client_->send(protocol::ConsoleDetachRequest{vm_});
  terminal_.reset();
  reading_stdin_ = false;
}

}  // namespace crosvisor::cli
