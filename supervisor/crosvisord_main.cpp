// crosvisord: the supervisor daemon. It serves the control socket (docs/protocol.md): each
// connection is a session whose VMs die with it. VM files named on the command line are started
// too and held by the daemon itself. SIGTERM stops every VM gracefully, in parallel, then exits;
// killed with SIGKILL, the daemon takes every VMM with it (PR_SET_PDEATHSIG).
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <map>
#include <set>

#include "actors/fleet_actor.hpp"
#include "config/vm_config.hpp"
#include "crosvisor/messages.hpp"
#include "crosvisor/service.hpp"
#include "daemon/control_socket.hpp"
#include "daemon/fleet_registry.hpp"
#include "daemon/server.hpp"
#include "daemon/session.hpp"
#include "supervisor/cli/vmm_binary_options.hpp"
#include "supervisor/exit_codes.hpp"
#include "supervisor/reactor.hpp"
#include "supervisor/signals.hpp"

namespace {

using namespace crosvisor;

// Every VM the service has, stopped in parallel; returns once all are dead (a second signal
// makes the stop a kill).
void stop_everything(caf::scoped_actor& self, const caf::actor& service) {
  std::vector<caf::actor> vms;
  self->request(service, std::chrono::seconds(10), list_atom::value)
      .receive([&](const std::vector<caf::actor>& listed) { vms = listed; }, [&](caf::error&) {});
  std::set<std::string> alive;
  std::map<caf::actor_addr, std::string> names;
  for (const auto& vm : vms) {
    self->request(vm, std::chrono::seconds(10), info_atom::value)
        .receive(
            [&](const VmInfo& info) {
              if (info.state != VmState::dead) {
                alive.insert(info.name);
                names[vm.address()] = info.name;
              }
            },
            [](caf::error&) {});
    // A VM may die, and its actor end, before our subscription arrives: its down message then
    // says it is gone.
    self->monitor(vm);
    self->send(vm, subscribe_atom::value, caf::actor_cast<caf::actor>(self));
    self->send(vm, stop_atom::value);
  }
  spdlog::info("stopping {} VM(s)", alive.size());
  while (!alive.empty()) {
    self->receive(
        [&](const VmEvent& event) {
          if (event.state == VmState::dead)
            alive.erase(event.vm);
        },
        [&](const caf::down_msg& down) {
          if (auto it = names.find(down.source); it != names.end())
            alive.erase(it->second);
        },
        [](const ConsoleLine&) {},
        [&](stop_atom, int) {
          spdlog::warn("second signal: killing every VM");
          for (const auto& vm : vms)
            self->send(vm, stop_atom::value, kill_atom::value);
        });
  }
}

// Fleets first, or they would restart the VMs that are being stopped.
void down_fleets(caf::scoped_actor& self, const caf::actor& fleets) {
  std::vector<daemon::FleetEntry> entries;
  self->request(fleets, std::chrono::seconds(10), list_atom::value)
      .receive([&](const std::vector<daemon::FleetEntry>& listed) { entries = listed; },
               [](caf::error&) {});
  for (const auto& entry : entries) {
    self->request(entry.fleet, caf::infinite, stop_atom::value)
        .receive([](const FleetStatus&) {}, [](caf::error&) {});
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"crosvisord: supervise crosvisor virtual machines"};
  std::vector<std::filesystem::path> files;
  std::filesystem::path socket_path;
  std::filesystem::path runtime_dir;
  std::filesystem::path log_file;
  std::string log_level = "info";
  bool shared = false;
  bool private_session = false;
  VmmBinaries vmm_binaries;
  app.add_option("VM_FILES", files, "VM descriptions (TOML) to start and hold");
  app.add_option("--socket", socket_path,
                 "Control socket (default: $XDG_RUNTIME_DIR/crosvisor/control.sock, or "
                 "/run/crosvisor/control.sock for root)");
  app.add_flag("--shared", shared,
               "Let other users connect (socket 0666); each still sees only its own VMs");
  app.add_flag("--private", private_session,
               "Serve one client: exit when its session ends (how `vm run` starts a supervisor "
               "of its own)");
  app.add_option("--runtime-dir", runtime_dir,
                 "Directory under which VM sockets and temporary files are kept");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  app.add_option("--log-file", log_file, "Log here instead of stderr");
  add_vmm_binary_options(app, vmm_binaries);
  CLI11_PARSE(app, argc, argv);
  raise_fd_limit();
  if (log_file.empty()) {
    spdlog::set_default_logger(spdlog::stderr_color_mt("crosvisord"));
  } else {
    spdlog::set_default_logger(spdlog::basic_logger_mt("crosvisord", log_file.string()));
    spdlog::flush_every(std::chrono::seconds(1));
  }
  spdlog::set_level(spdlog::level::from_str(log_level));

  // Validate everything before anything starts.
  std::vector<VmSpec> specs;
  for (const auto& file : files) {
    auto spec = config::load_vm_file(file);
    if (!spec) {
      spdlog::error("{}", spec.error().message);
      return kExitConfig;
    }
    specs.push_back(std::move(*spec));
  }

  const sigset_t stop_signals = block_stop_signals();
  // VM sockets and generated files live in a directory of this process's own, so that what a
  // daemon killed with SIGKILL left behind is recognised (its lock is free) and removed by the
  // next crosvisor process. Console logs live beside it and outlast it.
  auto runtime = make_private_runtime_dir(runtime_dir);
  if (!runtime) {
    spdlog::error("{}", runtime.error().message);
    return kExitSupervisor;
  }
  if (socket_path.empty())
    socket_path = daemon::default_control_socket();
  auto control = daemon::open_control_socket(socket_path, shared);
  if (!control) {
    spdlog::error("{}", control.error().message);
    return kExitSupervisor;
  }
  {
    caf::actor_system_config config;
    caf::actor_system system{config};
    auto reactor = std::make_shared<Reactor>();
    auto options = make_service_options(runtime->path, reactor);
    options.log_dir = runtime->path.parent_path() / "logs";
    options.vmm_binaries = vmm_binaries;
    auto service = spawn_service(system, options);
    caf::scoped_actor self{system};

    std::vector<caf::actor> held;  // handles of the VMs from the command line
    for (auto& spec : specs) {
      self->request(service, caf::infinite, create_atom::value, spec,
                    caf::actor_cast<caf::actor>(self))
          .receive(
              [&](caf::actor vm) { held.push_back(vm); },
              [&](caf::error& error) { spdlog::error("{}: {}", spec.name, system.render(error)); });
    }

    auto fleets = daemon::spawn_fleet_registry(system, service);
    daemon::SessionContext context{&system, service, fleets, ::geteuid()};
    auto server = std::make_unique<daemon::Server>(
        std::move(*control), [context](const daemon::PeerCredentials& peer,
                                       std::shared_ptr<daemon::ConnectionPort> connection) {
          return daemon::start_session(context, peer, std::move(connection));
        });
    reactor->watch_signals(stop_signals,
                           [&](int signo) { caf::anon_send(self, stop_atom::value, signo); });
    spdlog::info("serving {}; supervising {} VM(s) of its own; SIGTERM stops them all",
                 server->path().string(), held.size());

    bool running = true;
    bool served = false;
    while (running) {
      self->receive(
          [](const VmEvent&) {},  // of the VMs it holds: spdlog has told their story
          [](const ConsoleLine&) {},
          [&](stop_atom, int signo) {
            spdlog::info("signal {}: stopping every VM", signo);
            server.reset();  // no new sessions; the open ones end (their VMs are stopped below)
            down_fleets(self, fleets);
            stop_everything(self, service);
            running = false;
          },
          caf::after(std::chrono::milliseconds(200)) >>
              [&] {
                // A private supervisor lives as long as its one client.
                if (private_session && server) {
                  if (server->connections() > 0)
                    served = true;
                  else if (served)
                    running = false;
                }
              });
    }
    if (server && private_session) {
      server.reset();
      down_fleets(self, fleets);
      stop_everything(self, service);
    }
    held.clear();
    self->send_exit(service, caf::exit_reason::user_shutdown);
  }
  std::error_code ignored;
  std::filesystem::remove_all(runtime->path, ignored);
  spdlog::info("exiting");
  return 0;
}
