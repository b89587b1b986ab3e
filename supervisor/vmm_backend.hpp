// The one place that turns a VmSpec into a VMM launch: it prepares the VM's private directory and
// picks the backend for the VMM kind. Runs on the reactor thread.
#pragma once

#include <cstdint>
#include <filesystem>

#include "crosvisor/vm_spec.hpp"
#include "supervisor/vmm_launch.hpp"

namespace crosvisor {

Expected<VmmLaunch> prepare_vmm_launch(const VmSpec& spec, const std::filesystem::path& run_dir,
                                       std::uint32_t cid);

}  // namespace crosvisor
