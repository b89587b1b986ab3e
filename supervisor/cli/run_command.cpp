#include "supervisor/cli/run_command.hpp"

#include <poll.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <iostream>

#include "config/vm_config.hpp"
#include "protocol/requests.hpp"
#include "protocol/spec_json.hpp"
#include "supervisor/cli/daemon_client.hpp"
#include "supervisor/exit_codes.hpp"
#include "supervisor/signals.hpp"

namespace crosvisor::cli {
namespace {

using json = nlohmann::json;

void print_event(const VmEvent& event) {
  std::string line = "vm " + event.vm + ": " + std::string(to_string(event.state));
  if (event.reason)
    line += " (" + std::string(to_string(*event.reason)) + ")";
  if (!event.detail.empty())
    line += ": " + event.detail;
  std::cerr << line << std::endl;
}

// The VMM binaries a private supervisor needs for this VM: the file's, else the flags'.
std::vector<std::string> binary_args(const VmSpec& spec, const VmmBinaries& flags) {
  std::vector<std::string> args;
  auto qemu = flags.qemu;
  auto crosvm = flags.crosvm;
  if (!spec.vmm_binary.empty())
    (spec.vmm == VmmKind::crosvm ? crosvm : qemu) = spec.vmm_binary;
  if (!qemu.empty())
    args.insert(args.end(), {"--qemu", qemu.string()});
  if (!crosvm.empty())
    args.insert(args.end(), {"--crosvm", crosvm.string()});
  return args;
}

}  // namespace

int run_vm(const RunOptions& options) {
  remove_abandoned_runtime_dirs();
  auto spec = config::load_vm_file(options.file);
  if (!spec) {
    std::cerr << "vm: " << spec.error().message << '\n';
    return kExitConfig;
  }
  if (options.name)
    spec->name = *options.name;
  if (options.debug)
    spec->debug = *options.debug;
  if (options.accel)
    spec->accel = *options.accel;
  // The files are opened here, with this user's rights; the supervisor gets the fds.
  auto message = protocol::spec_to_message(*spec);
  if (!message) {
    std::cerr << "vm: " << message.error().message << '\n';
    return kExitConfig;
  }

  // Before any thread exists: the signals are read from a signalfd.
  const sigset_t stop_signals = block_stop_signals();
  const auto socket = choose_socket(options.socket);
  auto client = DaemonClient::connect(socket);
  std::optional<PrivateSupervisor> supervisor;
  if (!client && client.error().kind == ErrorKind::not_found) {
    // No daemon: a supervisor of our own, which dies with us.
    auto started =
        start_private_supervisor(binary_args(*spec, options.vmm_binaries), options.log_level);
    if (!started) {
      std::cerr << "vm: " << started.error().message << '\n';
      return kExitSupervisor;
    }
    supervisor = std::move(*started);
    client = DaemonClient::connect(supervisor->socket);
  } else if (client && (!spec->vmm_binary.empty() || !options.vmm_binaries.qemu.empty() ||
                        !options.vmm_binaries.crosvm.empty())) {
    std::cerr << "vm: " << options.file.string()
              << " or the command line names a VMM binary, but crosvisord at " << socket.string()
              << " runs the binaries it was started with\n";
    return kExitUsage;
  }
  if (!client) {
    std::cerr << "vm: " << client.error().message << '\n';
    return kExitSupervisor;
  }

  int exit_code = kExitSupervisor;
  int interrupted_by = 0;
  const auto on_event = [&](const json& event) {
    if (event.value("event", "") == "console") {
      if (options.console)
        std::cout << event.value("line", "") << std::endl;
      return;
    }
    auto state = protocol::parse_state_event(event);
    if (!state)
      return;
    print_event(*state);
    if (state->state == VmState::dead)
      exit_code = exit_code_for(state->reason.value_or(DeathReason::unknown));
  };
  auto created = client->call({{"op", "create"}, {"vm", message->vm}}, on_event, message->fds);
  message->fds.clear();
  if (!created) {
    std::cerr << "vm: " << created.error().message << '\n';
    return kExitConfig;
  }

  UniqueFd signals(signalfd(-1, &stop_signals, SFD_CLOEXEC));
  bool dead = exit_code != kExitSupervisor;
  while (!dead) {
    pollfd waits[2] = {{client->fd(), POLLIN, 0}, {signals.get(), POLLIN, 0}};
    if (::poll(waits, 2, -1) < 0 && errno != EINTR)
      break;
    if (waits[1].revents & POLLIN) {
      signalfd_siginfo info{};
      if (::read(signals.get(), &info, sizeof(info)) == sizeof(info)) {
        // First SIGINT/SIGTERM: graceful stop with escalation. A second one: SIGKILL at once.
        json stop = {{"op", "stop"}, {"vm", spec->name}};
        if (interrupted_by != 0)
          stop["force"] = true;
        else
          interrupted_by = static_cast<int>(info.ssi_signo);
        (void)client->send(stop);
      }
    }
    if (waits[0].revents & (POLLIN | POLLHUP)) {
      // Drain what is buffered, replies to our stops included.
      for (;;) {
        auto next = client->next(0);
        if (!next) {
          std::cerr << "vm: " << next.error().message << '\n';
          dead = true;
          break;
        }
        if (!next->has_value())
          break;
        if ((**next).contains("event"))
          on_event(**next);
        dead = exit_code != kExitSupervisor;
        if (dead)
          break;
      }
    }
  }
  if (supervisor) {
    // Our session ends with the connection; the private supervisor then exits by itself.
    client = make_error(ErrorKind::io, "closed");
    finish_private_supervisor(*supervisor);
  }
  // Interrupted and stopped as asked: report the interruption the way shells expect.
  if (interrupted_by != 0 && (exit_code == 0 || exit_code == exit_code_for(DeathReason::killed))) {
    return 128 + interrupted_by;
  }
  return exit_code;
}

}  // namespace crosvisor::cli
