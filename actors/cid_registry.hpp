// The CID registry actor: grants each VM a vsock CID unique on the host, and takes it back when
// the VM's actor is down. (With client proxies, issue 6: when the VM is dead and no proxy remains.)
#pragma once

#include <caf/fwd.hpp>
#include <filesystem>

#include "vsock/cid_locks.hpp"
#include "vsock/cid_pool.hpp"

namespace crosvisor {

struct CidRegistryOptions {
  vsock::CidRange range;
  // The namespace of host-wide reservations (vsock/cid_locks.hpp) shared by every crosvisor
  // process on the host; tests and benchmarks use scopes of their own.
  std::string scope = vsock::kDefaultCidScope;
  // Where the last granted CID is kept across restarts.
  std::filesystem::path state_file;
};

caf::actor spawn_cid_registry(caf::actor_system& system, CidRegistryOptions options);

}  // namespace crosvisor
