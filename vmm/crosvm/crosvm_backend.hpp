// The crosvm backend, as AVF's virtualizationmanager runs crosvm: every input is an inherited fd
// named /proc/self/fd/N, the control socket is bound and listening before the exec, the serial
// console goes to a pipe, and --extended-status makes the exit code tell how the VM ended.
#pragma once

#include "crosvisor/vm_spec.hpp"
#include "crosvisor/vmm_binaries.hpp"
#include "vmm/vmm_launch.hpp"

namespace crosvisor::vmm::crosvm {

inline constexpr const char* kDefaultBinary = kDefaultCrosvmBinary;

Expected<VmmLaunch> prepare(const VmSpec& spec, const LaunchContext& context);

}  // namespace crosvisor::vmm::crosvm
