#include "daemon/keeper.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <string>

namespace crosvisor::daemon {
namespace {

struct KeeperState {
  static inline const char* name = "crosvisor.keeper";
  std::string vm;  // its name, for the log
  VmHandle handle;
  bool dead = false;  // heard before the handle came (a VM that failed at once)
};

// Spawned with an argument: CAF 0.17 binds an argument-less function actor's (empty) argument
// tuple through a null pointer, which UBSan reports.
caf::behavior keeper(caf::stateful_actor<KeeperState>* self, std::string vm) {
  self->state.vm = std::move(vm);
  return {
      [=](keep_atom, VmHandle handle) {
        if (self->state.dead)
          return self->quit();
        // States only: a chatty guest's console is not the keeper's business.
        self->send(handle, events_atom::value);
        self->state.handle = std::move(handle);
      },
      [=](const VmEvent& event) {
        if (event.state != VmState::dead)
          return;
        self->state.dead = true;
        if (self->state.handle)
          self->quit();
      },
      [](const ConsoleText&) {},  // the few before its handle heard events_atom
  };
}

}  // namespace

caf::actor spawn_keeper(caf::actor_system& system, std::string vm) {
  return system.spawn(keeper, std::move(vm));
}

}  // namespace crosvisor::daemon
