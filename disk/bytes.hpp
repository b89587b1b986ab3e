// Little helpers for laying out on-disk structures: fixed-width little-endian stores into a byte
// buffer, so that every format writer spells its fields the way its specification does.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "core/crc32.hpp"

namespace crosvisor::disk {

using Bytes = std::vector<std::uint8_t>;

template <class T>
void store_le(std::span<std::uint8_t> out, std::size_t offset, T value) {
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    out[offset + i] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(value) >> (8 * i));
  }
}

template <class T>
void store_be(std::span<std::uint8_t> out, std::size_t offset, T value) {
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    out[offset + i] =
        static_cast<std::uint8_t>(static_cast<std::uint64_t>(value) >> (8 * (sizeof(T) - 1 - i)));
  }
}

template <class T>
T load_le(std::span<const std::uint8_t> in, std::size_t offset) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i)
    value |= std::uint64_t{in[offset + i]} << (8 * i);
  return static_cast<T>(value);
}

constexpr std::uint64_t align_up(std::uint64_t value, std::uint64_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

// CRC-32/ISO-HDLC (the zlib and GPT checksum).
using crosvisor::crc32;

}  // namespace crosvisor::disk
