// crosvisord: the supervisor daemon. For now it supervises the VMs named on its command line and
// stops them all gracefully, in parallel, on SIGTERM or SIGINT; the control socket comes later.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include "config/vm_config.hpp"
#include "crosvisor/messages.hpp"
#include "crosvisor/service.hpp"
#include "supervisor/cli/vmm_binary_options.hpp"
#include "supervisor/exit_codes.hpp"
#include "supervisor/reactor.hpp"
#include "supervisor/signals.hpp"

int main(int argc, char** argv) {
  using namespace crosvisor;
  CLI::App app{"crosvisord: supervise crosvisor virtual machines"};
  std::vector<std::filesystem::path> files;
  std::filesystem::path runtime_dir;
  std::string log_level = "info";
  app.add_option("VM_FILES", files, "VM descriptions (TOML) to start and supervise");
  app.add_option("--runtime-dir", runtime_dir,
                 "Directory under which VM sockets and temporary files are kept");
  VmmBinaries vmm_binaries;
  add_vmm_binary_options(app, vmm_binaries);
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  CLI11_PARSE(app, argc, argv);
  raise_fd_limit();
  spdlog::set_default_logger(spdlog::stderr_color_mt("crosvisord"));
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
  {
    caf::actor_system_config config;
    caf::actor_system system{config};
    auto reactor = std::make_shared<Reactor>();
    auto options = make_service_options(runtime->path, reactor);
    options.log_dir = runtime->path.parent_path() / "logs";
    options.vmm_binaries = vmm_binaries;
    auto service = spawn_service(system, options);
    caf::scoped_actor self{system};
    std::vector<caf::actor> vms;
    for (auto& spec : specs) {
      self->request(service, caf::infinite, create_atom::value, spec,
                    caf::actor_cast<caf::actor>(self))
          .receive(
              [&](caf::actor vm) { vms.push_back(vm); },
              [&](caf::error& error) { spdlog::error("{}: {}", spec.name, system.render(error)); });
    }
    std::size_t alive = vms.size();
    bool stopping = false;
    reactor->watch_signals(stop_signals,
                           [&](int signo) { caf::anon_send(self, stop_atom::value, signo); });
    spdlog::info("supervising {} VM(s); SIGTERM stops them all", alive);
    bool running = true;
    while (running) {
      self->receive(
          [&](const VmEvent& event) {
            if (event.state == VmState::dead && --alive == 0 && !files.empty())
              running = false;
          },
          [&](stop_atom, int signo) {
            spdlog::info("signal {}: stopping every VM", signo);
            if (stopping || alive == 0)
              running = false;
            stopping = true;
            for (auto& vm : vms)
              self->send(vm, stop_atom::value);
          });
    }
    self->send_exit(service, caf::exit_reason::user_shutdown);
  }
  std::error_code ignored;
  std::filesystem::remove_all(runtime->path, ignored);
  return 0;
}
