#include "disk/gpt.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

namespace crosvisor::disk {
namespace {

constexpr std::uint8_t kSignature[8] = {'E', 'F', 'I', ' ', 'P', 'A', 'R', 'T'};
constexpr std::uint32_t kRevision = 0x00010000;
constexpr std::uint64_t kPrimaryHeaderLba = 1;
constexpr std::uint64_t kPrimaryEntriesLba = 2;

Expected<Bytes> protective_mbr(std::uint64_t disk_size) {
  const std::uint64_t sectors = disk_size / kSectorSize;
  if (sectors > std::numeric_limits<std::uint32_t>::max()) {
    return make_error(ErrorKind::invalid_image,
                      "disk of " + std::to_string(disk_size) + " bytes is too large for an MBR");
  }
  Bytes mbr(kSectorSize, 0);
  // One partition entry at 446: status 0, CHS 0, type 0xEE (GPT protective), CHS 0, LBA 1, size.
  mbr[446 + 4] = 0xEE;
  store_le<std::uint32_t>(mbr, 446 + 8, 1);
  store_le<std::uint32_t>(mbr, 446 + 12, static_cast<std::uint32_t>(sectors));
  mbr[510] = 0x55;
  mbr[511] = 0xAA;
  return mbr;
}

Bytes entries_array(const std::vector<GptPartition>& partitions) {
  Bytes entries(kGptEntriesSize, 0);
  for (std::size_t i = 0; i < partitions.size(); ++i) {
    const auto& p = partitions[i];
    const std::size_t at = i * kGptPartitionEntrySize;
    const auto type = p.type.mixed_endian();
    const auto unique = p.unique.mixed_endian();
    std::copy(type.begin(), type.end(), entries.begin() + static_cast<std::ptrdiff_t>(at));
    std::copy(unique.begin(), unique.end(), entries.begin() + static_cast<std::ptrdiff_t>(at + 16));
    store_le<std::uint64_t>(entries, at + 32, p.first_lba);
    store_le<std::uint64_t>(entries, at + 40, p.last_lba);
    store_le<std::uint64_t>(entries, at + 48, 0);  // attributes
    for (std::size_t u = 0; u < p.name.size() && u < kPartitionNameUnits; ++u) {
      store_le<std::uint16_t>(entries, at + 56 + 2 * u, p.name[u]);
    }
  }
  return entries;
}

struct HeaderFields {
  std::uint64_t current_lba, backup_lba, first_usable_lba, last_usable_lba, entries_lba;
};

Bytes gpt_header(const Guid& disk_guid, std::uint32_t entries_crc, const HeaderFields& f) {
  Bytes header(kSectorSize, 0);  // 92 bytes of header, zero padding to the sector's end
  std::memcpy(header.data(), kSignature, sizeof(kSignature));
  store_le<std::uint32_t>(header, 8, kRevision);
  store_le<std::uint32_t>(header, 12, kGptHeaderSize);
  // 16: header CRC, filled below; 20: reserved
  store_le<std::uint64_t>(header, 24, f.current_lba);
  store_le<std::uint64_t>(header, 32, f.backup_lba);
  store_le<std::uint64_t>(header, 40, f.first_usable_lba);
  store_le<std::uint64_t>(header, 48, f.last_usable_lba);
  const auto guid = disk_guid.mixed_endian();
  std::copy(guid.begin(), guid.end(), header.begin() + 56);
  store_le<std::uint64_t>(header, 72, f.entries_lba);
  store_le<std::uint32_t>(header, 80, kGptNumPartitions);
  store_le<std::uint32_t>(header, 84, kGptPartitionEntrySize);
  store_le<std::uint32_t>(header, 88, entries_crc);
  store_le<std::uint32_t>(header, 16, crc32(std::span(header).first(kGptHeaderSize)));
  return header;
}

void append(Bytes& out, const Bytes& more) {
  out.insert(out.end(), more.begin(), more.end());
}

}  // namespace

Expected<GptFiles> build_gpt(const std::vector<GptPartition>& partitions, const Guid& disk_guid,
                             std::uint64_t footer_offset) {
  if (partitions.size() > kGptNumPartitions) {
    return make_error(ErrorKind::invalid_image, std::to_string(partitions.size()) +
                                                    " partitions: GPT holds at most " +
                                                    std::to_string(kGptNumPartitions));
  }
  GptFiles files;
  files.disk_size = footer_offset + kGptFooterSize;
  const std::uint64_t secondary_table_offset = footer_offset + kFooterPadding;
  const std::uint64_t last_lba = files.disk_size / kSectorSize - 1;
  const Bytes entries = entries_array(partitions);
  const std::uint32_t entries_crc = crc32(entries);
  const std::uint64_t first_usable = kGptBeginningSize / kSectorSize;
  const std::uint64_t last_usable = secondary_table_offset / kSectorSize - 1;

  auto mbr = protective_mbr(files.disk_size);
  if (!mbr)
    return std::unexpected(mbr.error());
  files.header = std::move(*mbr);
  append(files.header,
         gpt_header(disk_guid, entries_crc,
                    {kPrimaryHeaderLba, last_lba, first_usable, last_usable, kPrimaryEntriesLba}));
  append(files.header, entries);
  files.header.resize(kGptBeginningSize, 0);

  files.footer.assign(kFooterPadding, 0);
  append(files.footer, entries);
  // The backup header points at the backup entries, as the UEFI spec says (crosvm writes 2 here;
  // both tables are identical, so readers accept either).
  append(files.footer, gpt_header(disk_guid, entries_crc,
                                  {last_lba, kPrimaryHeaderLba, first_usable, last_usable,
                                   secondary_table_offset / kSectorSize}));
  return files;
}

Expected<std::u16string> gpt_partition_name(std::string_view label) {
  std::u16string out;
  const auto bad = [&](const std::string& why) {
    return make_error(ErrorKind::invalid_config,
                      "partition label \"" + std::string(label) + "\": " + why);
  };
  if (label.empty())
    return bad("must not be empty");
  for (std::size_t i = 0; i < label.size();) {
    const auto byte = static_cast<unsigned char>(label[i]);
    std::uint32_t code = 0;
    std::size_t length = 0;
    if (byte < 0x80) {
      code = byte, length = 1;
    } else if ((byte & 0xE0) == 0xC0) {
      code = byte & 0x1F, length = 2;
    } else if ((byte & 0xF0) == 0xE0) {
      code = byte & 0x0F, length = 3;
    } else if ((byte & 0xF8) == 0xF0) {
      code = byte & 0x07, length = 4;
    } else {
      return bad("not valid UTF-8");
    }
    if (i + length > label.size())
      return bad("not valid UTF-8");
    for (std::size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(label[i + k]);
      if ((next & 0xC0) != 0x80)
        return bad("not valid UTF-8");
      code = (code << 6) | (next & 0x3F);
    }
    i += length;
    if (code >= 0x10000) {
      code -= 0x10000;
      out.push_back(static_cast<char16_t>(0xD800 + (code >> 10)));
      out.push_back(static_cast<char16_t>(0xDC00 + (code & 0x3FF)));
    } else {
      out.push_back(static_cast<char16_t>(code));
    }
  }
  if (out.size() > kPartitionNameUnits) {
    return bad("is " + std::to_string(out.size()) + " UTF-16 code units long; GPT allows at most " +
               std::to_string(kPartitionNameUnits));
  }
  return out;
}

std::string utf16_to_utf8(std::u16string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    std::uint32_t code = text[i];
    if (code >= 0xD800 && code < 0xDC00 && i + 1 < text.size()) {
      code = 0x10000 + ((code - 0xD800) << 10) + (text[++i] - 0xDC00);
    }
    if (code < 0x80) {
      out.push_back(static_cast<char>(code));
    } else if (code < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (code >> 6)));
      out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
    } else if (code < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (code >> 12)));
      out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (code >> 18)));
      out.push_back(static_cast<char>(0x80 | ((code >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
    }
  }
  return out;
}

Expected<GptInfo> parse_gpt(std::span<const std::uint8_t> data, std::size_t header_offset,
                            std::size_t entries_offset) {
  if (header_offset + kGptHeaderSize > data.size() ||
      entries_offset + kGptEntriesSize > data.size()) {
    return make_error(ErrorKind::invalid_image, "GPT: data too short");
  }
  const auto header = data.subspan(header_offset, kGptHeaderSize);
  if (std::memcmp(header.data(), kSignature, sizeof(kSignature)) != 0) {
    return make_error(ErrorKind::invalid_image, "GPT: no \"EFI PART\" signature");
  }
  Bytes copy(header.begin(), header.end());
  const auto stored_crc = load_le<std::uint32_t>(copy, 16);
  store_le<std::uint32_t>(copy, 16, 0);
  if (crc32(copy) != stored_crc)
    return make_error(ErrorKind::invalid_image, "GPT: header CRC mismatch");
  const auto entries = data.subspan(entries_offset, kGptEntriesSize);
  if (crc32(entries) != load_le<std::uint32_t>(header, 88)) {
    return make_error(ErrorKind::invalid_image, "GPT: partition entries CRC mismatch");
  }
  GptInfo info;
  info.disk_guid = Guid::from_mixed_endian(header.data() + 56);
  info.current_lba = load_le<std::uint64_t>(header, 24);
  info.backup_lba = load_le<std::uint64_t>(header, 32);
  info.first_usable_lba = load_le<std::uint64_t>(header, 40);
  info.last_usable_lba = load_le<std::uint64_t>(header, 48);
  info.entries_lba = load_le<std::uint64_t>(header, 72);
  for (std::size_t i = 0; i < kGptNumPartitions; ++i) {
    const auto entry = entries.subspan(i * kGptPartitionEntrySize, kGptPartitionEntrySize);
    GptPartition partition;
    partition.type = Guid::from_mixed_endian(entry.data());
    if (partition.type.is_zero())
      continue;
    partition.unique = Guid::from_mixed_endian(entry.data() + 16);
    partition.first_lba = load_le<std::uint64_t>(entry, 32);
    partition.last_lba = load_le<std::uint64_t>(entry, 40);
    // Its size is last - first + 1 sectors: one that ends before it starts has none (found by
    // fuzz/gpt_fuzz.cpp: --inspect printed 2^64 - N bytes for it).
    if (partition.last_lba < partition.first_lba) {
      return make_error(ErrorKind::invalid_image,
                        "GPT: partition entry " + std::to_string(i + 1) + " ends (LBA " +
                            std::to_string(partition.last_lba) + ") before it starts (LBA " +
                            std::to_string(partition.first_lba) + ")");
    }
    for (std::size_t u = 0; u < kPartitionNameUnits; ++u) {
      const auto unit = load_le<std::uint16_t>(entry, 56 + 2 * u);
      if (unit == 0)
        break;
      partition.name.push_back(static_cast<char16_t>(unit));
    }
    info.partitions.push_back(std::move(partition));
  }
  return info;
}

}  // namespace crosvisor::disk
