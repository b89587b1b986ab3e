// One terminal attached to a VM's interactive console through crosvisord: the guest's bytes to
// stdout as they come, the user's keys to the guest, Ctrl-] to leave. Used by `vm console` and by
// `vm run --console` on a terminal. The caller owns the event loop: it hands over the daemon's
// events and tells when stdin is readable.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "cli/daemon_client.hpp"
#include "cli/terminal.hpp"

namespace crosvisor::cli {

class ConsoleSession {
 public:
  // Attaches (as the writer, taking the input over when `force`): refused when the VM is not
  // debug = full, or another console writes to it and `force` is not given. Raw mode when stdin
  // is a terminal. Events that arrive meanwhile go to `on_event`.
  static Expected<ConsoleSession> attach(
      DaemonClient& client, const protocol::Target& vm, bool force,
      const std::function<void(const nlohmann::json&)>& on_event = {});

  const std::string& vm() const { return vm_; }
  bool raw() const { return terminal_.has_value(); }
  // Still attached: not left with Ctrl-], and stdin not at its end.
  bool reading_stdin() const { return reading_stdin_; }
  // The console's bytes have begun to come (lines from before they did are still worth showing).
  bool showing_bytes() const { return attached_ && bytes_seen_; }
  // A daemon event: true when it was this console's (its bytes, the writer lost).
  bool on_event(const nlohmann::json& event);
  // stdin is readable: the keys go to the guest; false once the user left with Ctrl-] (the
  // console is then detached and the terminal restored).
  bool on_stdin();
  // Leaves the console (the terminal is restored); the VM goes on.
  void detach();
  // A line for the user on stderr, right in raw mode too.
  void say(const std::string& line) const;

 private:
  ConsoleSession(DaemonClient& client, std::string vm, std::optional<RawTerminal> terminal)
      : client_(&client), vm_(std::move(vm)), terminal_(std::move(terminal)) {}
  DaemonClient* client_;
  std::string vm_;
  std::optional<RawTerminal> terminal_;
  bool writer_ = true;
  bool attached_ = true;
  bool bytes_seen_ = false;
  bool reading_stdin_ = true;
};

}  // namespace crosvisor::cli
