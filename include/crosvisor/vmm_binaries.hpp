// Which VMM binaries run VMs that name none: given to the service, and to both programs as
// --qemu and --crosvm.
#pragma once

#include <filesystem>

namespace crosvisor {

// Looked up on PATH when nothing names a binary.
inline constexpr const char* kDefaultQemuBinary = "qemu-system-x86_64";
inline constexpr const char* kDefaultCrosvmBinary = "crosvm";

// The VMM binaries to run when a VM's spec names none (its vmm_binary is empty). Empty here too:
// the default name (qemu-system-x86_64, crosvm) looked up on PATH.
struct VmmBinaries {
  std::filesystem::path qemu;
  std::filesystem::path crosvm;
};

}  // namespace crosvisor
