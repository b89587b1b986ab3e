#include "cli/console_command.hpp"

#include <poll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cli/console_session.hpp"
#include "cli/output.hpp"
#include "core/exit_codes.hpp"
#include "process/signals.hpp"
#include "protocol/replies.hpp"

namespace crosvisor::cli {

int console_vm(const DaemonOptions& options, const std::string& vm, bool force) {
  auto target = target_named(vm);
  if (!target)
    return report(target.error());
  // Read from a signalfd in the loop below: a SIGTERM or a hang-up leaves the console cleanly,
  // the terminal restored. (In raw mode Ctrl-C is a key for the guest, not a signal.)
  const sigset_t stop_signals = process::block_stop_signals();
  UniqueFd signals(signalfd(-1, &stop_signals, SFD_CLOEXEC));
  auto client = find_daemon(DaemonSearch{options.socket, "warn", signals.get()});
  if (!client)
    return report(client.error());
  client->watch_signals(signals.get());
  std::optional<int> exit_code;
  std::optional<ConsoleSession> console;
  const auto on_event = [&](const nlohmann::json& event) {
    if (console && console->on_event(event))
      return;
    auto state = protocol::parse_state_event(event);
    if (!state || state->state != VmState::dead)
      return;
    std::string line = "vm " + state->vm + ": dead";
    if (state->reason)
      line += " (" + std::string(to_string(*state->reason)) + ")";
    if (!state->detail.empty())
      line += ": " + state->detail;
    if (console)
      console->say(line);
    exit_code = exit_code_for(state->reason.value_or(DeathReason::unknown));
  };
  auto attached = ConsoleSession::attach(*client, *target, force, on_event);
  if (!attached) {
    if (attached.error().kind == ErrorKind::interrupted)
      return kExitInterrupted + client->last_signal();
    return report(attached.error());
  }
  console.emplace(std::move(*attached));
  client->watch_signals(-1);  // from here on, the loop reads them itself
  console->say("Connected to VM " + console->vm() +
               "'s console. Escape character is ^] (Ctrl + ])" +
               (console->raw() ? "" : "; input is not a terminal: it is sent as it comes"));

  while (!exit_code) {
    for (;;) {  // what has been read already first
      auto next = client->next(0);
      if (!next) {
        console->detach();
        return report(next.error());
      }
      if (!next->has_value())
        break;
      if ((**next).contains("event")) {
        on_event(**next);
      } else if (!(**next).value("ok", true)) {
        console->say("vm: " + (**next).value("error", std::string("refused")));
      }
    }
    if (exit_code)
      break;
    pollfd waits[3] = {{client->fd(), POLLIN, 0},
                       {signals.get(), POLLIN, 0},
                       {console->reading_stdin() ? STDIN_FILENO : -1, POLLIN, 0}};
    if (::poll(waits, 3, -1) < 0 && errno != EINTR)
      break;
    if (waits[1].revents & POLLIN) {
      signalfd_siginfo info{};
      const int signo =
          ::read(signals.get(), &info, sizeof(info)) == sizeof(info) ? info.ssi_signo : SIGTERM;
      console->detach();
      console->say("vm: console left (signal " + std::to_string(signo) + "); VM " + console->vm() +
                   " goes on");
      return kExitInterrupted + signo;
    }
    if (waits[2].revents != 0 && !console->on_stdin()) {
      console->say("vm: console left; VM " + console->vm() + " goes on");
      return 0;
    }
  }
  console->detach();
  return exit_code.value_or(0);
}

}  // namespace crosvisor::cli
