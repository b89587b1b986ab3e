// Composite disks as crosvm builds them (disk/src/composite.rs): a GPT header, the partitions and a
// GPT footer, concatenated by offset. This file is the pure layout and crosvm's description of it
// (magic + CompositeDisk protobuf); QEMU's VMDK descriptors of it are in disk/vmdk.hpp.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crosvisor/error.hpp"
#include "disk/gpt.hpp"

namespace crosvisor::disk {

inline constexpr std::string_view kCompositeMagic{"composite_disk\x1d", 15};
inline constexpr std::uint64_t kCompositeVersion = 2;
// The zero filler that pads a read-only partition to 4 KiB is one alignment unit long.
inline constexpr std::uint64_t kZeroFillerSize = kPartitionAlignment;

struct PartitionInput {
  std::string label;
  std::uint64_t size = 0;  // bytes of the partition image
  bool writable = false;
  std::optional<Guid> guid;  // random when absent
  Guid type = kLinuxFilesystemType;
};

enum class ComponentKind { header, partition, filler, footer };

struct Component {
  ComponentKind kind;
  std::size_t partition = 0;  // index into the inputs, for partition and filler components
  std::uint64_t offset = 0;
  std::uint64_t length = 0;  // implied by the next offset, as crosvm computes it
  bool writable = false;
};

struct CompositeLayout {
  std::vector<Component> components;
  std::uint64_t length = 0;  // the disk size
  GptFiles gpt;
  std::vector<GptPartition> partitions;
};

// Lays out the disk. Errors: duplicate labels, labels longer than 36 UTF-16 units, more than 128
// partitions, a writable partition whose size is not a multiple of 4096, an empty partition.
Expected<CompositeLayout> plan_composite(const std::vector<PartitionInput>& inputs,
                                         const Guid& disk_guid);

// How a component is named in a description: a path, e.g. /proc/self/fd/N or an absolute path.
using ComponentNamer = std::function<std::string(const Component&)>;

// crosvm's composite file: the magic and one serialized CompositeDisk (version 2).
std::string encode_composite(const CompositeLayout& layout, const ComponentNamer& name_of);

// A composite file as crosvm reads it.
struct CompositeFile {
  std::uint64_t version = 0;
  struct Part {
    std::string path;
    std::uint64_t offset = 0;
    std::uint64_t length = 0;  // implied
    bool writable = false;
    std::uint64_t file_offset = 0;  // where its data starts in the host file
  };
  std::vector<Part> components;  // sorted by offset
  std::uint64_t length = 0;
};

// Validates as crosvm does: magic, protobuf, version <= 2, distinct offsets, length beyond the last
// offset; and rejects an empty component list (crosvm would crash on it).
Expected<CompositeFile> decode_composite(std::string_view bytes);

std::string_view to_string(ComponentKind kind);

}  // namespace crosvisor::disk
