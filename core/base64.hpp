// Base64 (RFC 4648, with padding) for bytes that must travel inside JSON strings: a guest's
// console is any bytes, and JSON strings are UTF-8.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace crosvisor {

std::string base64_encode(std::string_view bytes);
// Nothing for text that is not base64 (a wrong character, length or padding).
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace crosvisor
