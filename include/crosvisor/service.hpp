// The front door for applications that embed crosvisor in their own caf::actor_system.
#pragma once

#include <caf/fwd.hpp>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "crosvisor/messages.hpp"
#include "crosvisor/paths.hpp"
#include "crosvisor/vmm_binaries.hpp"

namespace crosvisor {

namespace vmm {
class Reactor;  // vmm/reactor.hpp: the I/O thread that runs VMM children
}
namespace process {
class CgroupHost;  // process/cgroups.hpp: where VMM cgroups are made
}

struct ServiceOptions {
  // Where VMs keep their sockets and temporary files; one subdirectory per VM, removed when it
  // dies.
  std::filesystem::path runtime_dir;
  // Where debug = full VMs keep their console: <log_dir>/<name>.log, or <log_dir>/<uid>/<name>.log
  // for a VM with an owner (crosvisord's clients), each boot appended after a marker line and
  // the file rotated to <name>.log.1 when it reaches log_max_bytes (default: <runtime_dir>/logs).
  std::filesystem::path log_dir;
  std::uint64_t log_max_bytes = 16ull << 20;
  // Where debug = full VMs leave memory dumps (a guest's panic, `vm dump`): <dump_dir>/NAME-*.core,
  // or <dump_dir>/<uid>/... for a VM with an owner; at most dumps_per_vm per VM name, the oldest
  // removed first (default: <runtime_dir>/dumps; crosvisord keeps them in its state directory).
  std::filesystem::path dump_dir;
  std::size_t dumps_per_vm = 3;
  // QEMU UEFI VMs' own variable stores: <nvram_dir>[/<uid>]/<name>.vars.fd, made from the VM's
  // nvram_template on its first boot and kept for the next (default: <runtime_dir>/nvram;
  // crosvisord keeps them in its state directory).
  std::filesystem::path nvram_dir;
  // Networks' own files (dnsmasq's hosts and leases): <network_dir>/<owner or "app">-<name>
  // (default: <runtime_dir>/networks).
  std::filesystem::path network_dir;
  // The I/O thread that starts and watches VMM children; created when not given.
  std::shared_ptr<vmm::Reactor> reactor;
  // vsock CIDs: the range granted from; the scope of the host-wide reservations every crosvisor
  // process shares (vsock/cid_locks.hpp: leave it, unless a test needs a world of its own); where
  // the last CID granted is kept, so that a restart does not hand out a recent CID at once
  // (default: last-cid in the user's runtime directory; none when the user has none).
  std::uint32_t cid_first = 2048;
  std::uint32_t cid_last = 65535;
  std::string cid_scope = "crosvisor";
  std::filesystem::path cid_state_file;
  VmmBinaries vmm_binaries;
  // What each user (but root) may take: VMs and file descriptors (lifecycle/owner_limits.hpp;
  // no limits by default, crosvisord sets them from its flags).
  std::size_t max_vms_per_owner = 0;
  std::size_t max_fds_per_owner = 0;
  std::size_t fd_capacity = 0;  // the process's RLIMIT_NOFILE, when the last fds are kept ...
  std::size_t fd_reserve = 0;   // ... this many of them, for root
  // Live restore: where durable VMs (a daemon's fleets) keep their run directories and records,
  // so that their VMMs outlive the supervisor and a successor takes them over (docs/state.md).
  // Empty: no VM can be durable.
  std::filesystem::path state_dir;
  // Confinement (docs/sandbox.md): each VMM runs as its VM owner's uid (a VM of a user), else as
  // vmm_user; with no capabilities and no_new_privs, in namespaces and under a root of its own,
  // QEMU under its seccomp filter. Needs root (crosvisord turns it on when it runs as root).
  // Off: VMMs run as this process does.
  bool confine_vmms = false;
  std::string vmm_user = "nobody";
  // Each VMM in a cgroup of its own under this host's subtree, with its VM's limits
  // (docs/sandbox.md); none: VMMs run unlimited, and a VM that asks for limits fails, saying
  // cgroups_unavailable.
  std::shared_ptr<const process::CgroupHost> cgroups;
  std::string cgroups_unavailable = "no cgroup subtree was given to crosvisor";
};

// Options with the defaults, for a runtime directory and (optionally) a reactor.
inline ServiceOptions make_service_options(std::filesystem::path runtime_dir,
                                           std::shared_ptr<vmm::Reactor> reactor = nullptr) {
  ServiceOptions options;
  options.runtime_dir = std::move(runtime_dir);
  options.reactor = std::move(reactor);
  return options;
}

// Spawns the service actor. Blocking work runs on the reactor thread, never on the scheduler's.
ServiceActor spawn_service(caf::actor_system& system, ServiceOptions options);

}  // namespace crosvisor
