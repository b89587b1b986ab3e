// The front door for applications that embed crosvisor in their own caf::actor_system.
#pragma once

#include <caf/fwd.hpp>
#include <filesystem>
#include <memory>

#include "crosvisor/paths.hpp"

namespace crosvisor {

class Reactor;

struct ServiceOptions {
  // Where VMs keep their sockets and temporary files; one subdirectory per VM, removed when it
  // dies.
  std::filesystem::path runtime_dir;
  // The I/O thread that starts and watches VMM children; created when not given.
  std::shared_ptr<Reactor> reactor;
};

// Spawns the service actor. Blocking work runs on the reactor thread, never on the scheduler's.
caf::actor spawn_service(caf::actor_system& system, ServiceOptions options);

}  // namespace crosvisor
