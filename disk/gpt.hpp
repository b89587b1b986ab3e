// GUID Partition Tables for composite disks, laid out exactly as crosvm's disk/src/gpt.rs and
// composite.rs do: a 0x5000-byte header file (protective MBR, primary header, 128 entries, padding)
// and a 0x5000-byte footer file (padding, the entries again, the backup header), so that the
// partitions in between start and end on 4 KiB boundaries.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "crosvisor/error.hpp"
#include "disk/bytes.hpp"
#include "disk/guid.hpp"

namespace crosvisor::disk {

inline constexpr std::uint64_t kSectorSize = 512;
inline constexpr std::uint32_t kGptHeaderSize = 92;
inline constexpr std::uint32_t kGptNumPartitions = 128;
inline constexpr std::uint32_t kGptPartitionEntrySize = 128;
inline constexpr std::size_t kGptEntriesSize = kGptNumPartitions * kGptPartitionEntrySize;
// Everything before the first partition: MBR, header and entries, padded to LBA 40.
inline constexpr std::uint64_t kGptBeginningSize = 40 * kSectorSize;
// Everything after the last partition: the entries and the backup header.
inline constexpr std::uint64_t kGptEndSize = 33 * kSectorSize;
// Partitions (and so the footer) start on 4 KiB boundaries.
inline constexpr std::uint32_t kPartitionSizeShift = 12;
inline constexpr std::uint64_t kPartitionAlignment = std::uint64_t{1} << kPartitionSizeShift;
// The footer starts with zeros so that the disk ends right after the backup header.
inline constexpr std::uint64_t kFooterPadding =
    align_up(kGptEndSize, kPartitionAlignment) - kGptEndSize;
inline constexpr std::uint64_t kGptFooterSize = kFooterPadding + kGptEndSize;
inline constexpr std::size_t kPartitionNameUnits = 36;

struct GptPartition {
  Guid type = kLinuxFilesystemType;
  Guid unique;
  std::uint64_t first_lba = 0;
  std::uint64_t last_lba = 0;
  std::u16string name;
};

struct GptFiles {
  Bytes header;  // kGptBeginningSize bytes, at offset 0 of the disk
  Bytes footer;  // kGptFooterSize bytes, at `footer_offset`
  std::uint64_t disk_size = 0;
};

// The header and footer of a disk whose partitions occupy [kGptBeginningSize, footer_offset).
Expected<GptFiles> build_gpt(const std::vector<GptPartition>& partitions, const Guid& disk_guid,
                             std::uint64_t footer_offset);

// A label as GPT stores it: UTF-16, at most 36 code units. Errors name the label.
Expected<std::u16string> gpt_partition_name(std::string_view utf8_label);
std::string utf16_to_utf8(std::u16string_view text);

// What a GPT header and its entries say, for inspection.
struct GptInfo {
  Guid disk_guid;
  std::uint64_t current_lba = 0;
  std::uint64_t backup_lba = 0;
  std::uint64_t first_usable_lba = 0;
  std::uint64_t last_usable_lba = 0;
  std::uint64_t entries_lba = 0;
  std::vector<GptPartition> partitions;  // the used entries
};

// Parses a header at `header_offset` in `data` whose entries are at `entries_offset`; checks the
// signature and both CRCs.
Expected<GptInfo> parse_gpt(std::span<const std::uint8_t> data, std::size_t header_offset,
                            std::size_t entries_offset);

}  // namespace crosvisor::disk
