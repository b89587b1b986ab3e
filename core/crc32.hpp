// CRC-32/ISO-HDLC (the zlib and GPT checksum): GPT headers and the state store's records.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace crosvisor {

std::uint32_t crc32(std::span<const std::uint8_t> data);
inline std::uint32_t crc32(std::string_view text) {
  return crc32(std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
}

}  // namespace crosvisor
