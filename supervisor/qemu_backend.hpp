// The QEMU backend: a microvm whose kernel, initrd, console and QMP socket are all inherited fds.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "crosvisor/vm_spec.hpp"
#include "supervisor/vmm_launch.hpp"

namespace crosvisor::qemu {

inline constexpr const char* kDefaultBinary = "qemu-system-x86_64";

// The accelerator list "kvm:tcg" as QEMU options: -accel kvm -accel tcg (first that works wins).
std::vector<std::string> accel_args(const std::string& accel);

// Opens everything the VM needs and builds the argv. `run_dir` is the VM's private directory
// (the QMP socket lives there). Fails, naming the file, when an input cannot be used.
Expected<VmmLaunch> prepare(const VmSpec& spec, const std::filesystem::path& run_dir);

// The QMP command that asks the guest to power off, and the one that ends QEMU at once.
inline constexpr const char* kPowerdownCommand = "system_powerdown";
inline constexpr const char* kQuitCommand = "quit";

}  // namespace crosvisor::qemu
