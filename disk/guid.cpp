#include "disk/guid.hpp"

#include <sys/random.h>

#include <cstdio>
#include <stdexcept>

namespace crosvisor::disk {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

}  // namespace

Expected<Guid> Guid::parse(std::string_view text) {
  const auto invalid = [&] {
    return make_error(ErrorKind::invalid_config,
                      "invalid GUID \"" + std::string(text) +
                          "\": expected XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX (hex digits)");
  };
  if (text.size() != 36)
    return invalid();
  std::array<std::uint8_t, 16> bytes{};
  std::size_t out = 0;
  for (std::size_t i = 0; i < text.size();) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (text[i] != '-')
        return invalid();
      ++i;
      continue;
    }
    const int high = hex_value(text[i]);
    const int low = hex_value(text[i + 1]);
    if (high < 0 || low < 0)
      return invalid();
    bytes[out++] = static_cast<std::uint8_t>(high * 16 + low);
    i += 2;
  }
  return Guid(bytes);
}

Guid Guid::random() {
  std::array<std::uint8_t, 16> bytes{};
  if (getrandom(bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size())) {
    throw std::runtime_error("getrandom failed");
  }
  bytes[6] = static_cast<std::uint8_t>((bytes[6] & 0x0F) | 0x40);  // version 4
  bytes[8] = static_cast<std::uint8_t>((bytes[8] & 0x3F) | 0x80);  // RFC 4122 variant
  return Guid(bytes);
}

std::string Guid::to_string() const {
  char text[37];
  std::snprintf(
      text, sizeof(text), "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X",
      bytes_[0], bytes_[1], bytes_[2], bytes_[3], bytes_[4], bytes_[5], bytes_[6], bytes_[7],
      bytes_[8], bytes_[9], bytes_[10], bytes_[11], bytes_[12], bytes_[13], bytes_[14], bytes_[15]);
  return text;
}

std::array<std::uint8_t, 16> Guid::mixed_endian() const {
  const auto& b = bytes_;
  return {b[3], b[2], b[1],  b[0],  b[5],  b[4],  b[7],  b[6],
          b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]};
}

Guid Guid::from_mixed_endian(const std::uint8_t* m) {
  return Guid({m[3], m[2], m[1], m[0], m[5], m[4], m[7], m[6], m[8], m[9], m[10], m[11], m[12],
               m[13], m[14], m[15]});
}

bool Guid::is_zero() const {
  for (auto byte : bytes_) {
    if (byte != 0)
      return false;
  }
  return true;
}

}  // namespace crosvisor::disk
