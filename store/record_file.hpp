// One record of the state store on disk, written so that a crash at any moment leaves either the
// old record or the new one, never a mix: the new one goes to a temporary file beside it, is
// flushed to the disk, renamed over the old one and the directory flushed too (the rename is the
// commit). Each record carries its length and CRC-32, so that a record damaged later (a bad disk,
// a hand edit, a file system that lost a block) is told apart from a valid one and refused.
//
//   crosvisor-record 1 <length> <crc32, 8 hex digits>\n<length bytes of JSON>
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>

#include "crosvisor/error.hpp"

namespace crosvisor::store {

inline constexpr std::string_view kRecordMagic = "crosvisor-record";
inline constexpr int kRecordVersion = 1;
// A record larger than this is refused when read (a fleet of 10 000 VMs is about 10 MiB).
inline constexpr std::uintmax_t kMaxRecordBytes = 64ull << 20;
// Temporary files of writes that never reached their rename start with this.
inline constexpr std::string_view kTemporaryPrefix = ".tmp-";

// Replaces `file` with `body`, atomically and durably. On any failure (a full disk, an I/O
// error) the old record, if any, is untouched and no temporary file is left.
Expected<void> write_record(const std::filesystem::path& file, const nlohmann::json& body);
// The record's JSON; an io error for a file that cannot be read, invalid_config for one that is
// not an intact record (truncated, damaged, not a record at all), naming the file and the flaw.
Expected<nlohmann::json> read_record(const std::filesystem::path& file);
// Removes `file` (a missing one is fine) and flushes its directory.
Expected<void> remove_record(const std::filesystem::path& file);

}  // namespace crosvisor::store
