// Disks for a VMM launch: every image becomes an inherited fd in the plan, and composite disks are
// assembled in the VM's private directory (GPT header, footer and filler files, the descriptions
// naming each part as /proc/self/fd/N).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "crosvisor/error.hpp"
#include "crosvisor/vm_spec.hpp"
#include "process/fd_plan.hpp"

namespace crosvisor::vmm {

// QEMU arguments attaching `disk` as virtio-blk device number `index`. A composite disk goes
// through a VMDK descriptor; its read-only partitions sit under a throwaway qcow2 layer whose
// backing file QEMU opens read-only (QEMU drops read-only extents from a VMDK, so a read-only part
// must be protected this way: guest writes to it are discarded when the VM dies).
// Where QEMU's virtio devices sit: microvm's MMIO transport, or PCI on the q35 machine that UEFI
// firmware boots on.
enum class QemuBus { mmio, pci };
Expected<std::vector<std::string>> qemu_disk_args(const DiskSpec& disk, std::size_t index,
                                                  const std::filesystem::path& run_dir, QemuBus bus,
                                                  process::FdPlan& fds);

// crosvm arguments attaching `disk`: `--block /proc/self/fd/N[,ro=true]`. A composite disk is a
// crosvm composite file naming every component as /proc/self/fd/N.
Expected<std::vector<std::string>> crosvm_disk_args(const DiskSpec& disk, std::size_t index,
                                                    const std::filesystem::path& run_dir,
                                                    process::FdPlan& fds);

}  // namespace crosvisor::vmm
