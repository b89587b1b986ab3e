// --qemu PATH and --crosvm PATH: the VMM binaries for VMs whose file names none; the same options
// in `vm` and crosvisord. (Header-only: only the programs, which link CLI11, include it.)
#pragma once

#include <CLI/CLI.hpp>

#include "crosvisor/vmm_binaries.hpp"

namespace crosvisor {

inline void add_vmm_binary_options(CLI::App& app, VmmBinaries& binaries) {
  app.add_option("--qemu", binaries.qemu,
                 "QEMU binary for VMs that name none (default: qemu-system-x86_64 on PATH)");
  app.add_option("--crosvm", binaries.crosvm,
                 "crosvm binary for VMs that name none (default: crosvm on PATH)");
}

}  // namespace crosvisor
