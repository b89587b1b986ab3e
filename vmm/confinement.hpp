// Who a VM's VMM runs as, and in what (process/sandbox.hpp, docs/sandbox.md): a VM of a user
// (a shared daemon's client) runs as that user, with the user's groups; any other VM (root's,
// the daemon's own fleets and command line, an embedding application's) as the configured VMM
// user. Never as root, and never with a capability.
#pragma once

#include <filesystem>
#include <string>

#include "crosvisor/error.hpp"
#include "crosvisor/vm_spec.hpp"
#include "process/sandbox.hpp"

namespace crosvisor::vmm {

// The empty directory under the runtime directory that confined VMMs build their roots on.
inline constexpr const char* kSandboxRoot = "sandbox-root";

// How a supervisor confines its VMMs (ServiceOptions::confine_vmms).
struct Confinement {
  std::string vmm_user;               // VMs without an owning user run as this user
  std::filesystem::path mount_point;  // an empty directory the VMM's root is built on
};

// Who `spec`'s VMM runs as, and in what, as the user database says now (NSS: called on the
// reactor thread, as part of a launch). An unknown or root `vmm_user` is invalid_config.
Expected<process::Sandbox> confinement_for(const VmSpec& spec, const Confinement& confinement);

// The arguments that put QEMU under its own seccomp filter: no obsolete system calls, no
// privilege changes, no fork or exec, no scheduler or CPU affinity changes.
inline constexpr const char* kQemuSeccomp =
    "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny";

// Gives the VMM's run directory, and what is in it now, to the VMM's user: it makes its
// sockets there and opens its console FIFOs by path.
Expected<void> hand_over_run_dir(const std::filesystem::path& run_dir,
                                 const process::Sandbox& sandbox);

}  // namespace crosvisor::vmm
