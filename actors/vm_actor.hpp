// The vm actor: owns one VMM child (through the reactor) and its private directory, walks the
// lifecycle, and tells its client handles and subscribers.
#pragma once

#include <caf/fwd.hpp>
#include <cstdint>
#include <filesystem>
#include <memory>

#include "actors/cid_registry.hpp"
#include "actors/network_actor.hpp"
#include "actors/state_keeper.hpp"
#include "actors/vm_protocol.hpp"
#include "crosvisor/vm_spec.hpp"
#include "process/cgroups.hpp"
#include "vmm/confinement.hpp"

namespace crosvisor {

namespace vmm {
class Reactor;
}

struct VmPaths {
  std::filesystem::path run_dir;      // private: sockets and generated files, removed at death
  std::filesystem::path console_log;  // kept for debug = full VMs; unused otherwise
  std::uint64_t console_log_max_bytes = 16ull << 20;
  std::filesystem::path dump_dir;  // debug = full: where its memory dumps go
  std::size_t dumps_kept = 3;      // of this VM's name, at most
  std::filesystem::path nvram;     // QEMU UEFI boots: its own variable store
  // Live restore (a daemon-owned VM): its VMM outlives the supervisor, run_dir is in the state
  // store, and `keeper` keeps its record (store/records.hpp) while it runs, for a successor.
  struct Durable {
    StateKeeperActor keeper;
    std::string boot_id;
    std::uint32_t restarts = 0;  // so far, for the record
    std::vector<std::int64_t> recent_restarts_ms;
    // A VMM an earlier supervisor left running, to take over instead of launching one.
    std::optional<store::VmRecord> takeover;
  };
  std::optional<Durable> durable;
  // Confined (vmm/confinement.hpp): how its VMM is, resolved at each launch.
  std::optional<vmm::Confinement> confine;
  // Where its VMM's cgroup is made (named after run_dir), or why there is none.
  std::shared_ptr<const process::CgroupHost> cgroups;
  std::string cgroups_unavailable;
  std::uint32_t restarts = 0;  // by its fleet so far (vm stats)
};

// `cid_registry` grants the VM its vsock CID before the VMM starts. Client handles attach
// themselves (actors/client_proxy); when the last one is gone the VM is stopped, and once the VM
// is dead and no handle remains the actor quits. `watcher` hears of the death at once.
VmActorImpl spawn_vm_actor(caf::actor_system& system, VmSpec spec,
                           std::shared_ptr<vmm::Reactor> reactor, CidRegistryActor cid_registry,
                           VmDeathWatcher watcher, VmPaths paths,
                           std::vector<NetworkActor> networks = {});

}  // namespace crosvisor
