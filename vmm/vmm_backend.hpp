// The one place that turns a VmSpec into a VMM launch: it prepares the VM's private directory,
// picks the backend for the VMM kind and opens the console log. Runs on the reactor thread.
#pragma once

#include "crosvisor/vm_spec.hpp"
#include "vmm/vmm_launch.hpp"

namespace crosvisor::vmm {

Expected<VmmLaunch> prepare_vmm_launch(const VmSpec& spec, const LaunchContext& context);

// A durable VMM's environment names the fd of its CID reservation here (vsock/cid_locks.hpp).
inline constexpr const char* kCidReservationVariable = "CROSVISOR_CID_RESERVATION_FD";

}  // namespace crosvisor::vmm
