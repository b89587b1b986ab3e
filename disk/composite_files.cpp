#include "disk/composite_files.hpp"

#include <fstream>
#include <sstream>

#include "disk/composite.hpp"
#include "disk/image_file.hpp"
#include "disk/vmdk.hpp"

namespace crosvisor::disk {

CompositeOutputs composite_outputs(const std::filesystem::path& out) {
  const std::string base = out.string();
  return {out,
          base + ".header",
          base + ".footer",
          base + ".filler",
          base + ".vmdk",
          base + ".base.vmdk",
          {}};
}

std::vector<std::filesystem::path> CompositeOutputs::all() const {
  std::vector<std::filesystem::path> files{header, footer, filler};
  files.insert(files.end(), vmdk_sparse.begin(), vmdk_sparse.end());
  files.insert(files.end(), {vmdk_parent, vmdk, composite});
  return files;
}

Expected<CompositeOutputs> create_composite_files(const std::filesystem::path& out,
                                                  const std::vector<PartitionFile>& partitions) {
  std::vector<PartitionInput> inputs;
  std::vector<std::filesystem::path> absolute;
  for (const auto& partition : partitions) {
    auto image = open_disk_image(partition.path, partition.writable,
                                  "partition \"" + partition.label + "\"");
    if (!image)
      return std::unexpected(image.error());
    inputs.push_back(
        {partition.label, image->size, partition.writable, partition.guid, type_guid(partition.type)});
    absolute.push_back(std::filesystem::absolute(partition.path).lexically_normal());
  }
  auto layout = plan_composite(inputs, Guid::random());
  if (!layout)
    return std::unexpected(layout.error());

  auto outputs = composite_outputs(std::filesystem::absolute(out).lexically_normal());
  const auto name_of = [&](const Component& component) -> std::string {
    switch (component.kind) {
      case ComponentKind::header:
        return outputs.header.string();
      case ComponentKind::footer:
        return outputs.footer.string();
      case ComponentKind::filler:
        return outputs.filler.string();
      case ComponentKind::partition:
        break;
    }
    return absolute[component.partition].string();
  };
  const std::string header(layout->gpt.header.begin(), layout->gpt.header.end());
  const std::string footer(layout->gpt.footer.begin(), layout->gpt.footer.end());
  const std::string filler(kZeroFillerSize, '\0');
  const auto vmdk = encode_protected_vmdk(
      *layout, name_of, outputs.vmdk_parent.filename().string(), [&](std::size_t i) {
        return outputs.composite.filename().string() + ".ro" + std::to_string(i + 1) + ".vmdk";
      });
  struct File {
    std::filesystem::path path;
    std::string bytes;
    std::uint64_t size = 0;
  };
  std::vector<File> files = {
      {outputs.header, header}, {outputs.footer, footer}, {outputs.filler, filler}};
  for (std::size_t i = 0; i < vmdk.sparse_sectors.size(); ++i) {
    const auto extent = empty_sparse_extent(vmdk.sparse_sectors[i]);
    outputs.vmdk_sparse.push_back(outputs.composite.string() + ".ro" + std::to_string(i + 1) +
                                  ".vmdk");
    files.push_back({outputs.vmdk_sparse.back(),
                     std::string(extent.head.begin(), extent.head.end()), extent.file_size});
  }
  files.push_back({outputs.vmdk_parent, vmdk.parent});
  files.push_back({outputs.vmdk, vmdk.child});
  // The composite file last: it is what users open, so it appears only when all else exists.
  files.push_back({outputs.composite, encode_composite(*layout, name_of)});
  std::vector<std::filesystem::path> written;
  for (const auto& [path, bytes, size] : files) {
    if (auto ok = write_file_atomically(path, bytes, size); !ok) {
      std::error_code ignored;
      for (const auto& done : written)
        std::filesystem::remove(done, ignored);
      return std::unexpected(ok.error());
    }
    written.push_back(path);
  }
  return outputs;
}

namespace {

Expected<std::string> read_file(const std::filesystem::path& path, std::uint64_t limit) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return std::unexpected(errno_error(ErrorKind::not_found, path.string(), errno));
  std::string bytes(limit, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(limit));
  bytes.resize(static_cast<std::size_t>(in.gcount()));
  return bytes;
}

std::span<const std::uint8_t> as_bytes(const std::string& text) {
  return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

}  // namespace

Expected<std::string> inspect_composite(const std::filesystem::path& path) {
  auto bytes = read_file(path, 1 << 20);
  if (!bytes)
    return std::unexpected(bytes.error());
  auto file = decode_composite(*bytes);
  if (!file)
    return std::unexpected(Error{file.error().kind, path.string() + ": " + file.error().message});
  std::ostringstream out;
  out << path.string() << ": composite disk, version " << file->version << ", " << file->length
      << " bytes, " << file->components.size() << " components\n";
  out << "  offset      length      access  file\n";
  for (const auto& part : file->components) {
    char line[64];
    std::snprintf(line, sizeof(line), "  0x%-9llx 0x%-9llx %-7s ",
                  static_cast<unsigned long long>(part.offset),
                  static_cast<unsigned long long>(part.length), part.writable ? "rw" : "ro");
    out << line << part.path;
    // crosvm reads such a component from that offset of its file (crosvisor writes 0 always).
    if (part.file_offset != 0)
      out << " (from byte " << part.file_offset << " of the file)";
    out << '\n';
  }
  // crosvm resolves relative component paths against the composite file's directory.
  const auto resolve = [&](const std::string& component) {
    const std::filesystem::path p(component);
    return p.is_absolute() ? p : path.parent_path() / p;
  };
  auto header = read_file(resolve(file->components.front().path), kGptBeginningSize);
  if (!header) {
    out << "GPT: " << header.error().message << '\n';
    return out.str();
  }
  auto gpt = parse_gpt(as_bytes(*header), kSectorSize, 2 * kSectorSize);
  if (!gpt) {
    out << "GPT: " << gpt.error().message << '\n';
    return out.str();
  }
  out << "GPT: disk GUID " << gpt->disk_guid.to_string() << ", usable LBAs "
      << gpt->first_usable_lba << "-" << gpt->last_usable_lba << ", backup header at LBA "
      << gpt->backup_lba << '\n';
  for (std::size_t i = 0; i < gpt->partitions.size(); ++i) {
    const auto& p = gpt->partitions[i];
    out << "  " << i + 1 << ": \"" << utf16_to_utf8(p.name) << "\" LBA " << p.first_lba << "-"
        << p.last_lba << " (" << (p.last_lba - p.first_lba + 1) * kSectorSize << " bytes) GUID "
        << p.unique.to_string()
        << (p.type == kEfiSystemPartitionType ? ", EFI system partition" : "") << '\n';
  }
  // The backup header must agree: it sits in the last sector of the footer component.
  const auto& footer_part = file->components.back();
  auto footer = read_file(resolve(footer_part.path), footer_part.length);
  if (footer && footer->size() == footer_part.length) {
    auto backup = parse_gpt(as_bytes(*footer), footer->size() - kSectorSize, kFooterPadding);
    out << "backup GPT: "
        << (backup ? "valid, LBA " + std::to_string(backup->current_lba) : backup.error().message)
        << '\n';
  }
  return out.str();
}

bool is_composite_file(const std::filesystem::path& path) {
  auto start = read_file(path, kCompositeMagic.size());
  return start && *start == kCompositeMagic;
}

Expected<std::string> partitions_entry(const std::filesystem::path& path) {
  auto bytes = read_file(path, 1 << 20);
  if (!bytes)
    return std::unexpected(bytes.error());
  auto file = decode_composite(*bytes);
  if (!file)
    return std::unexpected(file.error());
  const auto resolve = [&](const std::string& component) {
    const std::filesystem::path p(component);
    return p.is_absolute() ? p : path.parent_path() / p;
  };
  auto header = read_file(resolve(file->components.front().path), kGptBeginningSize);
  if (!header)
    return std::unexpected(header.error());
  auto gpt = parse_gpt(as_bytes(*header), kSectorSize, 2 * kSectorSize);
  if (!gpt)
    return std::unexpected(gpt.error());
  std::string entry = "[[disks]]\npartitions = [";
  const char* separator = " ";
  for (const auto& partition : gpt->partitions) {
    // The component that starts where the GPT says the partition does.
    const auto at = partition.first_lba * kSectorSize;
    for (const auto& part : file->components) {
      if (part.offset != at)
        continue;
      entry += std::string(separator) + "{ label = \"" + utf16_to_utf8(partition.name) +
               "\", path = \"" + resolve(part.path).string() + "\"" +
               (part.writable ? ", writable = true" : "") + " }";
      separator = ",\n               ";
    }
  }
  return entry + " ]";
}

Expected<PartitionFile> parse_partition_argument(std::string_view argument) {
  std::vector<std::string> fields;
  std::string field;
  std::istringstream in{std::string(argument)};
  while (std::getline(in, field, ':'))
    fields.push_back(field);
  const auto bad = [&](const std::string& why) {
    return make_error(ErrorKind::invalid_config, "--partition \"" + std::string(argument) +
                                                     "\": " + why +
                                                     " (expected LABEL:PATH[:writable][:esp][:GUID])");
  };
  if (fields.size() < 2 || fields[0].empty() || fields[1].empty())
    return bad("missing label or path");
  PartitionFile partition{fields[0], fields[1], false, std::nullopt};
  for (std::size_t i = 2; i < fields.size(); ++i) {
    if (fields[i] == "writable") {
      partition.writable = true;
    } else if (auto type = partition_type_named(fields[i])) {
      partition.type = *type;
    } else if (auto guid = Guid::parse(fields[i])) {
      partition.guid = *guid;
    } else {
      return bad("\"" + fields[i] + "\" is not \"writable\", a partition type (esp, linux) nor a GUID");
    }
  }
  return partition;
}

}  // namespace crosvisor::disk
