// GUIDs as GPT uses them: written as text in the usual 8-4-4-4-12 form and stored on disk
// mixed-endian (the first three fields little-endian, the last eight bytes as they are).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "crosvisor/error.hpp"
#include "crosvisor/vm_spec.hpp"

namespace crosvisor::disk {

class Guid {
 public:
  Guid() = default;
  // The 16 bytes in text order (big-endian fields).
  explicit Guid(const std::array<std::uint8_t, 16>& bytes) : bytes_(bytes) {}

  static Expected<Guid> parse(std::string_view text);
  // A random (version 4, RFC 4122 variant) GUID from the kernel's random source.
  static Guid random();

  std::string to_string() const;  // upper case, as sgdisk prints it
  std::array<std::uint8_t, 16> mixed_endian() const;
  static Guid from_mixed_endian(const std::uint8_t* bytes);
  bool is_zero() const;

  friend bool operator==(const Guid&, const Guid&) = default;

 private:
  std::array<std::uint8_t, 16> bytes_{};
};

// Partition type GUIDs (UEFI spec; Linux's is the freedesktop discoverable-partitions one).
inline const Guid kLinuxFilesystemType = *Guid::parse("0FC63DAF-8483-4772-8E79-3D69D8477DE4");
inline const Guid kEfiSystemPartitionType = *Guid::parse("C12A7328-F81F-11D2-BA4B-00A0C93EC93B");

// The GPT type GUID of a partition type (UEFI spec, table 5.7; the Discoverable Partitions
// Specification for Linux data).
inline const Guid& type_guid(PartitionType type) {
  return type == PartitionType::esp ? kEfiSystemPartitionType : kLinuxFilesystemType;
}

}  // namespace crosvisor::disk
