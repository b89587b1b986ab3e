// `vm composite`: a composite disk written next to OUT, like `crosvm create_composite`: OUT (crosvm
// format), OUT.header, OUT.footer, OUT.filler and OUT.vmdk (for QEMU), naming the partitions by
// absolute path. All files appear together or not at all.
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
};

struct CompositeOutputs {
  std::filesystem::path composite, header, footer, filler, vmdk;
};

CompositeOutputs composite_outputs(const std::filesystem::path& out);

Expected<CompositeOutputs> create_composite_files(const std::filesystem::path& out,
                                                  const std::vector<PartitionFile>& partitions);

// A human-readable account of a composite file: its components and the GPT they carry.
Expected<std::string> inspect_composite(const std::filesystem::path& path);

// "LABEL:PATH[:writable][:GUID]" as `crosvm create_composite` takes it.
Expected<PartitionFile> parse_partition_argument(std::string_view argument);

}  // namespace crosvisor::disk
