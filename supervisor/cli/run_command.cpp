#include "supervisor/cli/run_command.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <csignal>
#include <cstdio>
#include <iostream>

#include "config/vm_config.hpp"
#include "crosvisor/messages.hpp"
#include "crosvisor/service.hpp"
#include "supervisor/exit_codes.hpp"
#include "supervisor/reactor.hpp"
#include "supervisor/signals.hpp"

namespace crosvisor::cli {

namespace {

void print_event(const VmEvent& event) {
  std::string line = "vm " + event.vm + ": " + std::string(to_string(event.state));
  if (event.reason)
    line += " (" + std::string(to_string(*event.reason)) + ")";
  if (!event.detail.empty())
    line += ": " + event.detail;
  std::cerr << line << std::endl;
}

}  // namespace

int run_vm(const RunOptions& options) {
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

  // Before any thread exists: the signals are taken from a signalfd, in no thread's handler.
  const sigset_t stop_signals = block_stop_signals();
  auto runtime = make_private_runtime_dir();
  if (!runtime) {
    std::cerr << "vm: " << runtime.error().message << '\n';
    return kExitSupervisor;
  }

  int exit_code = kExitSupervisor;
  int interrupted_by = 0;
  {
    caf::actor_system_config config;
    caf::actor_system system{config};
    auto reactor = std::make_shared<Reactor>();
    auto service_options = make_service_options(runtime->path, reactor);
    service_options.log_dir = runtime->path.parent_path() / "logs";
    service_options.vmm_binaries = options.vmm_binaries;
    auto service = spawn_service(system, service_options);
    caf::scoped_actor self{system};

    caf::actor vm;
    self->request(service, caf::infinite, create_atom::value, *spec,
                  caf::actor_cast<caf::actor>(self))
        .receive([&](caf::actor created) { vm = std::move(created); },
                 [&](caf::error& error) { std::cerr << "vm: " << system.render(error) << '\n'; });
    if (vm) {
      // First SIGINT/SIGTERM: graceful stop with escalation. A second one: SIGKILL at once.
      reactor->watch_signals(stop_signals, [vm, &interrupted_by](int signo) {
        if (interrupted_by == 0) {
          interrupted_by = signo;
          caf::anon_send(vm, stop_atom::value);
        } else {
          caf::anon_send(vm, stop_atom::value, kill_atom::value);
        }
      });
      bool dead = false;
      while (!dead) {
        self->receive(
            [&](const VmEvent& event) {
              print_event(event);
              if (event.state == VmState::dead) {
                dead = true;
                exit_code = exit_code_for(event.reason.value_or(DeathReason::unknown));
              }
            },
            [&](const ConsoleLine& line) { std::cout << line.text << std::endl; });
      }
    }
    self->send_exit(service, caf::exit_reason::user_shutdown);
  }
  std::error_code ignored;
  std::filesystem::remove_all(runtime->path, ignored);
  // Interrupted and stopped as asked: report the interruption the way shells expect.
  if (interrupted_by != 0 && (exit_code == 0 || exit_code == exit_code_for(DeathReason::killed))) {
    return 128 + interrupted_by;
  }
  return exit_code;
}

}  // namespace crosvisor::cli
