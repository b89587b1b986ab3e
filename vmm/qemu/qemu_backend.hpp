// The QEMU backend: a microvm whose kernel, initrd, console and QMP socket are all inherited fds.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "crosvisor/vm_spec.hpp"
#include "crosvisor/vmm_binaries.hpp"
#include "vmm/vmm_launch.hpp"

namespace crosvisor::vmm::qemu {

inline constexpr const char* kDefaultBinary = kDefaultQemuBinary;

// The accelerator list "kvm:tcg" as QEMU options: -accel kvm -accel tcg (first that works wins).
std::vector<std::string> accel_args(const std::string& accel);

// The guest kernel command line QEMU gets. Under TCG alone, microvm offers the guest no timer to
// calibrate its TSC against but the PIT, and PIT calibration fails when the host is busy (seen:
// 7 of 16 boots with three guests on two cores); the kernel then marks the TSC unstable and hangs
// early in boot. Emulated TSC runs at the host's rate, so we tell the guest that rate with
// tsc_early_khz, unless the params already do or a hardware accelerator may be used.
std::string kernel_params(const VmSpec& spec, std::optional<std::uint64_t> host_tsc_khz);

// The host's TSC rate in kHz ("cpu MHz" of /proc/cpuinfo), if it can be read.
std::optional<std::uint64_t> host_tsc_khz();

// Opens everything the VM needs and builds the argv. The QMP socket lives in the run directory;
// QEMU gets a vhost-vsock device for the CID where /dev/vhost-vsock exists. A guest panic
// reaches QEMU through a pvpanic device and ends it (exit 1 after a GUEST_PANICKED event); a
// guest reset ends it too (-no-reboot: exit 0 after SHUTDOWN with reason guest-reset). Fails,
// naming the file, when an input cannot be used.
Expected<VmmLaunch> prepare(const VmSpec& spec, const LaunchContext& context);

}  // namespace crosvisor::vmm::qemu
