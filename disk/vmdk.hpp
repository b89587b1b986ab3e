// VMDK descriptors for QEMU, which reads crosvisor's composite disks through them.
//
// Launched VMs get a monolithicFlat descriptor (one FLAT extent per component) and QEMU options
// that put a throwaway qcow2 layer over each read-only part (vmm/disk_attach.cpp). A
// descriptor written to disk for users (`vm composite`) cannot carry such options, and QEMU
// ignores every extent that is not "RW", so it uses VMDK's own copy-on-write instead: a child
// descriptor whose writable partitions are FLAT extents over their files and whose read-only runs
// (GPT header, read-only partitions, fillers, footer) are empty SPARSE extents, over a parent
// descriptor that names every read-only file. Reads of a read-only run fall through to the
// parent; writes to it land in its sparse extent file, never in the partition or GPT files.
// (Checked on this machine with QEMU 7.2's qemu-io and qemu-img.)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "disk/bytes.hpp"
#include "disk/composite.hpp"

namespace crosvisor::disk {

// VMware's hosted sparse extent format, as QEMU reads it (block/vmdk.c, VMDK4Header).
inline constexpr std::uint64_t kSparseGrainSectors = 128;  // 64 KiB grains
inline constexpr std::uint32_t kSparseEntriesPerTable = 512;

// A monolithicFlat descriptor with one FLAT extent per component, sizes in sectors. A partition
// whose size is not a multiple of 512 is rounded up (QEMU reads zeros past the end of a file),
// so the filler shrinks by the same amount. Read-only parts must be protected by whoever attaches
// the disk.
std::string encode_vmdk(const CompositeLayout& layout, const ComponentNamer& name_of);

// The files of a descriptor that keeps read-only parts read-only (see above).
struct ProtectedVmdk {
  std::string child;   // the descriptor users open
  std::string parent;  // named by the child's parentFileNameHint
  // One empty sparse extent per read-only run, in disk order: its size in sectors.
  std::vector<std::uint64_t> sparse_sectors;
};
// `parent_name` and `sparse_name(i)` are the names the child uses for the parent and for the
// i-th sparse extent (relative names resolve against the child's directory).
ProtectedVmdk encode_protected_vmdk(const CompositeLayout& layout, const ComponentNamer& name_of,
                                    const std::string& parent_name,
                                    const std::function<std::string(std::size_t)>& sparse_name);

// An empty sparse extent of `sectors` sectors: its first bytes (header and grain directories),
// and the whole file's size (the grain tables that follow are zeros: a sparse file).
struct SparseExtent {
  Bytes head;
  std::uint64_t file_size = 0;
};
SparseExtent empty_sparse_extent(std::uint64_t sectors);

}  // namespace crosvisor::disk
