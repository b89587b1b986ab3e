// embedded-demo VM_FILE: an application with its own caf::actor_system runs a VM through
// crosvisor. Its actor creates the VM and holds the handle; once the guest is ready it drops the
// handle, and crosvisor stops the VM because no client holds it any more. The demo exits 0 when
// the VM went down cleanly (SHUTDOWN).
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <crosvisor/crosvisor.hpp>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>

namespace {

struct AppState {
  crosvisor::VmHandle vm;  // the VM lives while this does
  std::optional<crosvisor::VmState> last;
};

caf::behavior app(caf::stateful_actor<AppState>* self, crosvisor::ServiceActor service,
                  crosvisor::VmSpec spec) {
  self->request(service, caf::infinite, crosvisor::create_atom::value, std::move(spec),
                caf::actor_cast<caf::actor>(self))
      .then([=](crosvisor::VmHandle handle) { self->state.vm = handle; },
            [=](caf::error& error) {
              std::cerr << "create: " << self->system().render(error) << '\n';
              self->quit();
            });
  return {
      [=](const crosvisor::VmEvent& event) {
        if (event.state == self->state.last)
          return;  // a subscription starts with the current state
        self->state.last = event.state;
        std::cout << "app: " << event.vm << " is " << crosvisor::to_string(event.state)
                  << (event.detail.empty() ? "" : " (" + event.detail + ")") << std::endl;
        if (event.state == crosvisor::VmState::ready && self->state.vm) {
          // A subscription does not keep the VM alive; it lets us watch it go down.
          self->send(self->state.vm, crosvisor::subscribe_atom::value,
                     caf::actor_cast<caf::actor>(self));
          std::cout << "app: dropping my handle" << std::endl;
          self->state.vm = crosvisor::VmHandle();
        }
        if (event.state == crosvisor::VmState::dead) {
          std::cout << "app: died, " << crosvisor::to_string(*event.reason) << std::endl;
          self->quit(*event.reason == crosvisor::DeathReason::shutdown
                         ? caf::exit_reason::normal
                         : caf::exit_reason::user_shutdown);
        }
      },
      [=](const crosvisor::ConsoleText& console) {
        if (self->state.vm) {  // the console, while we hold the VM
          crosvisor::for_each_line(
              console.lines, [](std::string_view line) { std::cout << "guest: " << line << '\n'; });
        }
      },
  };
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: embedded-demo VM_FILE\n";
    return 2;
  }
  auto spec = crosvisor::load_vm_file(argv[1]);
  if (!spec) {
    std::cerr << spec.error().message << '\n';
    return 3;
  }
  caf::actor_system_config config;
  caf::actor_system system{config};
  // The supervisor's blocking work (children, consoles, sockets) runs on its own I/O thread,
  // never on this system's scheduler.
  char scratch[] = "/tmp/embedded-demo-XXXXXX";
  if (mkdtemp(scratch) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  auto service = crosvisor::spawn_service(system, crosvisor::make_service_options(scratch));
  caf::scoped_actor self{system};
  auto demo = system.spawn(app, service, std::move(*spec));
  self->monitor(demo);
  caf::error outcome;
  self->receive([&](const caf::down_msg& down) { outcome = down.reason; });
  self->send_exit(service, caf::exit_reason::user_shutdown);
  std::error_code ignored;
  std::filesystem::remove_all(scratch, ignored);
  return outcome ? 1 : 0;
}
