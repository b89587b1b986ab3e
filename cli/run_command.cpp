#include "cli/run_command.hpp"

#include <poll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <csignal>
#include <iostream>

#include "cli/console_session.hpp"
#include "cli/daemon_client.hpp"
#include "cli/history_commands.hpp"
#include "cli/output.hpp"
#include "config/vm_config.hpp"
#include "core/exit_codes.hpp"
#include "process/signals.hpp"
#include "protocol/replies.hpp"
#include "protocol/requests.hpp"
#include "protocol/spec_json.hpp"

namespace crosvisor::cli {
namespace {

using json = nlohmann::json;

std::string seconds_text(std::chrono::milliseconds ms) {
  const auto tenths = ms.count() / 100;
  return std::to_string(tenths / 10) + (tenths % 10 ? "." + std::to_string(tenths % 10) : "") +
         " s";
}

}  // namespace

int run_vm(const RunOptions& options) {
  auto spec = config::load_vm_file(options.file);
  if (!spec)
    return report(spec.error());
  if (options.name) {
    if (!is_valid_vm_name(*options.name)) {
      std::cerr << "vm run: --name '" << *options.name << "' is not a VM name: " << kVmNameRule
                << '\n';
      return kExitUsage;
    }
    spec->name = *options.name;
  }
  if (options.debug)
    spec->debug = *options.debug;
  if (options.accel)
    spec->accel = *options.accel;
  if (spec->vmm_binary.empty()) {
    spec->vmm_binary =
        spec->vmm == VmmKind::crosvm ? options.vmm_binaries.crosvm : options.vmm_binaries.qemu;
  }
  if (options.console && spec->debug == DebugLevel::none) {
    std::cerr << "vm " << spec->name
              << ": debug = \"none\": its console is neither kept nor shown, so --console shows "
                 "nothing (run it with --debug full to see it)\n";
  }
  // The files are opened here, with this user's rights; the supervisor gets the fds.
  auto message = protocol::spec_to_message(*spec);
  if (!message)
    return report(message.error());

  // Before any thread exists: the signals are read from a signalfd, at every wait below.
  const sigset_t stop_signals = process::block_stop_signals();
  UniqueFd signals(signalfd(-1, &stop_signals, SFD_CLOEXEC));
  const auto interrupted = [&](int signo) {
    std::cerr << "vm " << spec->name << ": interrupted before it started; nothing is left\n";
    return kExitInterrupted + (signo != 0 ? signo : SIGINT);
  };
  auto client =
      find_or_start_daemon(DaemonSearch{options.socket, options.log_level, signals.get()},
                           [](const std::string& news) { std::cerr << "vm: " << news << '\n'; });
  if (!client) {
    if (client.error().kind == ErrorKind::interrupted)
      return interrupted(SIGINT);
    return report(client.error());
  }

  int exit_code = -1;  // until the VM is dead
  int interrupted_by = 0;
  // `--console` on a terminal: the console goes both ways until Ctrl-] (console_session.hpp).
  std::optional<ConsoleSession> console;
  const auto say = [&](const std::string& line) {
    if (console)
      console->say(line);
    else
      std::cerr << line << std::endl;
  };
  const auto on_event = [&](const json& event) {
    if (console && console->on_event(event))
      return;
    const std::string kind = event.value("event", "");
    if (kind == "console") {
      // Shown as lines unless the interactive console shows its bytes.
      if (options.console && !(console && console->showing_bytes()))
        std::cout << event.value("line", "") << std::endl;
      return;
    }
    if (kind == "daemon") {
      std::cerr << "vm: " << event.value("detail", "crosvisord is going away") << '\n';
      return;
    }
    if (kind == "console_dropped") {
      std::cerr << "vm " << event.value("vm", "?") << ": " << event.value("lines", 0)
                << " console lines were dropped while this terminal was not reading (the "
                   "console log keeps them)\n";
      return;
    }
    auto state = protocol::parse_state_event(event);
    if (!state)
      return;
    say(event_text(*state));
    if (state->state == VmState::dead)
      exit_code = exit_code_for(state->reason.value_or(DeathReason::unknown));
  };
  // Ctrl-C while the VM is being created: leaving is enough, the session's end stops the VM.
  client->watch_signals(signals.get());
  if (auto filled = fill_default_binaries(*client, {&message->vm}); !filled) {
    if (filled.error().kind == ErrorKind::interrupted)
      return interrupted(client->last_signal());
    return report(filled.error());
  }
  auto created =
      client->call(protocol::CreateRequest{message->vm, options.detach}, on_event, message->fds);
  message->fds.clear();
  if (!created) {
    if (created.error().kind == ErrorKind::interrupted)
      return interrupted(client->last_signal());
    return report(created.error());
  }
  if (options.detach) {
    // crosvisord holds it now: this command only watches it come up (Ctrl-C stops watching).
    // A VM with no condition to be ready on is up once it runs (as in a fleet): it never
    // reports ready, and waiting for that would not end.
    const VmState up = has_ready_condition(*spec) ? VmState::ready : VmState::running;
    const int code = wait_on(*client, spec->name, up, true, signals.get());
    if (code >= kExitInterrupted) {
      std::cerr << "vm " << spec->name << ": not ready yet, and detached: crosvisord keeps it "
                << "(vm wait " << spec->name << " --until ready; vm stop " << spec->name << ")\n";
      return 0;
    }
    if (code == 0) {
      std::cerr << "vm " << spec->name << ": detached: crosvisord keeps it until `vm stop "
                << spec->name << "`\n";
    }
    return code;
  }
  if (options.console && spec->debug == DebugLevel::full && ::isatty(STDIN_FILENO)) {
    auto attached =
        ConsoleSession::attach(*client, *protocol::parse_target(spec->name), false, on_event);
    if (attached) {
      console.emplace(std::move(*attached));
      console->say("vm " + spec->name +
                   ": console attached: what you type goes to the guest, Ctrl-C included; Ctrl-] "
                   "leaves the console (then Ctrl-C stops the VM)");
    } else if (attached.error().kind == ErrorKind::interrupted) {
      return interrupted(client->last_signal());
    } else {
      std::cerr << "vm " << spec->name << ": no console input: " << attached.error().message
                << '\n';
    }
  }
  client->watch_signals(-1);  // from here on, the loop below reads them itself

  for (;;) {
    // What has been read already first: the reply to create may have brought events along.
    for (;;) {
      auto next = client->next(0);
      if (!next) {
        std::cerr << "vm: " << next.error().message << " before " << spec->name
                  << " was reported dead; its session, and so the VM, ended with it\n";
        return kExitSupervisor;
      }
      if (!next->has_value())
        break;
      if ((**next).contains("event"))
        on_event(**next);
      if (exit_code >= 0)
        break;
    }
    if (exit_code >= 0)
      break;
    const bool typing = console && console->reading_stdin();
    pollfd waits[3] = {{client->fd(), POLLIN, 0},
                       {signals.get(), POLLIN, 0},
                       {typing ? STDIN_FILENO : -1, POLLIN, 0}};
    if (::poll(waits, 3, -1) < 0 && errno != EINTR)
      break;
    if (waits[2].revents != 0 && !console->on_stdin()) {
      std::cerr << "vm " << spec->name << ": console left; Ctrl-C stops the VM\n";
    }
    if (waits[1].revents & POLLIN) {
      signalfd_siginfo info{};
      if (::read(signals.get(), &info, sizeof(info)) == sizeof(info)) {
        // First SIGINT/SIGTERM: graceful stop with escalation. A second one: SIGKILL at once.
        protocol::StopRequest stop{.vm = *protocol::parse_target(spec->name)};
        if (interrupted_by != 0) {
          stop.force = true;
          say("vm " + spec->name + ": killing it");
        } else {
          interrupted_by = static_cast<int>(info.ssi_signo);
          say("vm " + spec->name + ": asking the guest to power off; it has " +
              seconds_text(spec->stop_timeout) +
              " before its VMM is made to stop (press Ctrl-C again to kill it now)");
        }
        (void)client->send(stop);
      }
    }
  }
  // Interrupted and stopped as asked: report the interruption the way shells expect.
  if (interrupted_by != 0 && (exit_code == 0 || exit_code == exit_code_for(DeathReason::killed)))
    return kExitInterrupted + interrupted_by;
  return exit_code;
}

}  // namespace crosvisor::cli
