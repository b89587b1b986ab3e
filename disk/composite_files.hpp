// `vm composite`: a composite disk written next to OUT, like `crosvm create_composite`: OUT (crosvm
// format), OUT.header, OUT.footer, OUT.filler, and for QEMU OUT.vmdk over OUT.base.vmdk with one
// sparse extent OUT.roN.vmdk per read-only run (disk/vmdk.hpp: QEMU writes a read-only part's
// changes there, never into the part), naming the partitions by absolute path. All files appear
// together or not at all.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "crosvisor/error.hpp"
#include "disk/guid.hpp"

namespace crosvisor::disk {

struct PartitionFile {
  std::string label;
  std::filesystem::path path;
  bool writable = false;
  std::optional<Guid> guid;
  PartitionType type = PartitionType::linux_data;
};

struct CompositeOutputs {
  std::filesystem::path composite, header, footer, filler, vmdk, vmdk_parent;
  std::vector<std::filesystem::path> vmdk_sparse;  // OUT.ro1.vmdk, OUT.ro2.vmdk, ...
  // Every file, the composite last.
  std::vector<std::filesystem::path> all() const;
};

CompositeOutputs composite_outputs(const std::filesystem::path& out);

Expected<CompositeOutputs> create_composite_files(const std::filesystem::path& out,
                                                  const std::vector<PartitionFile>& partitions);

// A human-readable account of a composite file: its components and the GPT they carry.
Expected<std::string> inspect_composite(const std::filesystem::path& path);

// Whether the file at `path` is a composite disk description (it starts with crosvm's magic).
bool is_composite_file(const std::filesystem::path& path);
// For a composite file named where a raw image belongs: the [[disks]] entry that describes the
// same disk (its partitions by label, path and access), for the user to put in the VM file.
Expected<std::string> partitions_entry(const std::filesystem::path& composite);

// "LABEL:PATH[:writable][:GUID]" as `crosvm create_composite` takes it.
Expected<PartitionFile> parse_partition_argument(std::string_view argument);

}  // namespace crosvisor::disk
