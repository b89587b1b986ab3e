// The front door for applications that embed crosvisor in their own caf::actor_system.
#pragma once

#include <caf/fwd.hpp>
#include <cstdint>
#include <filesystem>
#include <memory>

#include "crosvisor/paths.hpp"

namespace crosvisor {

class Reactor;

// The VMM binaries to run when a VM's spec names none (its vmm_binary is empty). Empty here too:
// the default name (qemu-system-x86_64, crosvm) looked up on PATH.
struct VmmBinaries {
  std::filesystem::path qemu;
  std::filesystem::path crosvm;
};

struct ServiceOptions {
  // Where VMs keep their sockets and temporary files; one subdirectory per VM, removed when it
  // dies.
  std::filesystem::path runtime_dir;
  // Where debug = full VMs keep their console, one <name>.log each, truncated when a VM of that
  // name starts again (default: <runtime_dir>/logs).
  std::filesystem::path log_dir;
  // The I/O thread that starts and watches VMM children; created when not given.
  std::shared_ptr<Reactor> reactor;
  // vsock CIDs: the range granted from, and the lock directory shared by every crosvisor process
  // of the host (default: <default_runtime_dir()>/cids), which also keeps the last CID granted.
  std::uint32_t cid_first = 2048;
  std::uint32_t cid_last = 65535;
  std::filesystem::path cid_lock_dir;
  VmmBinaries vmm_binaries;
};

// Options with the defaults, for a runtime directory and (optionally) a reactor.
inline ServiceOptions make_service_options(std::filesystem::path runtime_dir,
                                           std::shared_ptr<Reactor> reactor = nullptr) {
  ServiceOptions options;
  options.runtime_dir = std::move(runtime_dir);
  options.reactor = std::move(reactor);
  return options;
}

// Spawns the service actor. Blocking work runs on the reactor thread, never on the scheduler's.
caf::actor spawn_service(caf::actor_system& system, ServiceOptions options);

}  // namespace crosvisor
