// The control socket's wire format: each message is a 4-byte big-endian length and that many
// bytes of JSON (one object). File descriptors travel with a message as SCM_RIGHTS, attached to
// its first byte. Pure logic: the decoder is fed bytes and hands out whole frames.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "crosvisor/error.hpp"

namespace crosvisor::protocol {

inline constexpr std::size_t kMaxFrame = 1 << 20;  // 1 MiB of JSON
inline constexpr std::size_t kMaxFds = 32;         // fds attached to one message

// A message as JSON text. Guest consoles and VMM output are not always valid UTF-8 (a line cut
// at its length limit can split a character): invalid bytes become U+FFFD instead of throwing.
std::string dump(const nlohmann::json& message);

// The bytes of one frame carrying `payload`.
std::string encode_frame(std::string_view payload);

class FrameDecoder {
 public:
  // Appends bytes read from the socket.
  void feed(std::string_view bytes) { buffer_.append(bytes); }
  // The next whole frame's payload, nothing when more bytes are needed, or an error (an empty or
  // oversized frame): the stream cannot be trusted after that.
  Expected<std::optional<std::string>> next();
  // Bytes received that are not a whole frame yet.
  std::size_t pending() const { return buffer_.size(); }

 private:
  std::string buffer_;
};

}  // namespace crosvisor::protocol
