#include "disk/composite.hpp"

#include <algorithm>
#include <set>

#include "disk/cdisk_spec.pb.h"

namespace crosvisor::disk {

std::string_view to_string(ComponentKind kind) {
  switch (kind) {
    case ComponentKind::header:
      return "header";
    case ComponentKind::partition:
      return "partition";
    case ComponentKind::filler:
      return "filler";
    case ComponentKind::footer:
      return "footer";
  }
  return "?";
}

Expected<CompositeLayout> plan_composite(const std::vector<PartitionInput>& inputs,
                                         const Guid& disk_guid) {
  if (inputs.size() > kGptNumPartitions) {
    return make_error(ErrorKind::invalid_image, std::to_string(inputs.size()) +
                                                    " partitions: a GPT holds at most " +
                                                    std::to_string(kGptNumPartitions));
  }
  CompositeLayout layout;
  layout.components.push_back({ComponentKind::header, 0, 0, 0, false});
  std::set<std::u16string> names;
  std::uint64_t offset = kGptBeginningSize;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const auto& input = inputs[i];
    auto name = gpt_partition_name(input.label);
    if (!name)
      return std::unexpected(name.error());
    if (!names.insert(*name).second) {
      return make_error(ErrorKind::invalid_config,
                        "duplicate partition label \"" + input.label + "\"");
    }
    if (input.size == 0) {
      return make_error(ErrorKind::invalid_image, "partition \"" + input.label + "\" is empty");
    }
    const std::uint64_t aligned = align_up(input.size, kPartitionAlignment);
    if (input.writable && aligned != input.size) {
      return make_error(ErrorKind::invalid_image,
                        "writable partition \"" + input.label + "\" is " +
                            std::to_string(input.size) + " bytes, not a multiple of " +
                            std::to_string(kPartitionAlignment) +
                            " (pad the image, or make the partition read-only)");
    }
    layout.components.push_back({ComponentKind::partition, i, offset, 0, input.writable});
    if (aligned != input.size) {
      layout.components.push_back({ComponentKind::filler, i, offset + input.size, 0, false});
    }
    layout.partitions.push_back(GptPartition{input.type, input.guid.value_or(Guid::random()),
                                             offset / kSectorSize,
                                             (offset + aligned) / kSectorSize - 1, *name});
    offset += aligned;
  }
  layout.components.push_back({ComponentKind::footer, 0, offset, 0, false});
  auto gpt = build_gpt(layout.partitions, disk_guid, offset);
  if (!gpt)
    return std::unexpected(gpt.error());
  layout.gpt = std::move(*gpt);
  layout.length = layout.gpt.disk_size;
  for (std::size_t i = 0; i < layout.components.size(); ++i) {
    const std::uint64_t end =
        i + 1 < layout.components.size() ? layout.components[i + 1].offset : layout.length;
    layout.components[i].length = end - layout.components[i].offset;
  }
  return layout;
}

std::string encode_composite(const CompositeLayout& layout, const ComponentNamer& name_of) {
  cdisk_spec::CompositeDisk proto;
  proto.set_version(kCompositeVersion);
  proto.set_length(layout.length);
  for (const auto& component : layout.components) {
    auto* disk = proto.add_component_disks();
    disk->set_file_path(name_of(component));
    disk->set_offset(component.offset);
    disk->set_read_write_capability(component.writable ? cdisk_spec::READ_WRITE
                                                       : cdisk_spec::READ_ONLY);
  }
  return std::string(kCompositeMagic) + proto.SerializeAsString();
}

Expected<CompositeFile> decode_composite(std::string_view bytes) {
  if (bytes.substr(0, kCompositeMagic.size()) != kCompositeMagic) {
    return make_error(ErrorKind::invalid_image, "not a composite disk: bad magic");
  }
  cdisk_spec::CompositeDisk proto;
  const std::string_view body = bytes.substr(kCompositeMagic.size());
  if (!proto.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return make_error(ErrorKind::invalid_image,
                      "composite disk: the CompositeDisk protobuf is malformed");
  }
  if (proto.version() > kCompositeVersion) {
    return make_error(ErrorKind::invalid_image,
                      "composite disk: unknown version " + std::to_string(proto.version()));
  }
  if (proto.component_disks_size() == 0) {
    return make_error(ErrorKind::invalid_image, "composite disk: no components");
  }
  CompositeFile file;
  file.version = proto.version();
  file.length = proto.length();
  for (const auto& disk : proto.component_disks()) {
    file.components.push_back(CompositeFile::Part{
        disk.file_path(), disk.offset(), 0, disk.read_write_capability() == cdisk_spec::READ_WRITE,
        disk.file_offset()});
  }
  std::stable_sort(file.components.begin(), file.components.end(),
                   [](const auto& a, const auto& b) { return a.offset < b.offset; });
  for (std::size_t i = 0; i + 1 < file.components.size(); ++i) {
    if (file.components[i].offset == file.components[i + 1].offset) {
      return make_error(ErrorKind::invalid_image, "composite disk: two components at offset " +
                                                      std::to_string(file.components[i].offset));
    }
    file.components[i].length = file.components[i + 1].offset - file.components[i].offset;
  }
  auto& last = file.components.back();
  if (file.length <= last.offset) {
    return make_error(ErrorKind::invalid_image,
                      "composite disk: length " + std::to_string(file.length) +
                          " does not exceed the last offset " + std::to_string(last.offset));
  }
  last.length = file.length - last.offset;
  return file;
}

}  // namespace crosvisor::disk
