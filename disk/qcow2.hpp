// An empty qcow2 (version 3) image: the throwaway copy-on-write layer that QEMU puts over a
// read-only partition of a composite disk (QEMU cannot mix read-only and writable extents in one
// VMDK, so a read-only partition becomes a qcow2 node whose backing file is opened read-only).
// Metadata only: a few 64 KiB clusters, whatever the virtual size.
#pragma once

#include <cstdint>

#include "disk/bytes.hpp"

namespace crosvisor::disk {

inline constexpr std::uint32_t kQcow2ClusterBits = 16;

// The whole image file for a disk of `virtual_size` bytes (a multiple of 512).
Bytes empty_qcow2(std::uint64_t virtual_size);

}  // namespace crosvisor::disk
