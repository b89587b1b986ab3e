// The control socket's wire format: each message is a 4-byte big-endian length and that many
// bytes of JSON (one object). File descriptors travel with a message as SCM_RIGHTS, attached to
// its bytes (the first ones; with more than one sendmsg's worth, spread over its first pieces).
// Pure logic: the decoder is fed bytes and hands out whole frames.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "crosvisor/error.hpp"
#include "process/fd_passing.hpp"

namespace crosvisor::protocol {

inline constexpr std::size_t kMaxFrame = 1 << 20;  // 1 MiB of JSON: what a request may be
// What a reply may be, for clients: the daemon's answers are larger than any request (a list of
// 10 000 VMs is about 3.5 MB) and come from the daemon, not from anyone; but not without bound.
inline constexpr std::size_t kMaxReplyFrame = 64 << 20;
// fds attached to one sendmsg: the kernel's SCM_MAX_FD. A request with more spreads them over
// several sendmsg calls (its frame's bytes in as many pieces); the daemon gathers them.
inline constexpr std::size_t kMaxFdsPerMessage = process::kMaxFdsPerMessage;
// fds one request may carry in all: a fleet of many images, a composite of 128 partitions.
inline constexpr std::size_t kMaxFdsPerRequest = 4096;

// A message as JSON text. Guest consoles and VMM output are not always valid UTF-8 (a line cut
// at its length limit can split a character): invalid bytes become U+FFFD instead of throwing.
std::string dump(const nlohmann::json& message);

// The bytes of one frame carrying `payload`.
std::string encode_frame(std::string_view payload);

class FrameDecoder {
 public:
  explicit FrameDecoder(std::size_t max_frame = kMaxFrame) : max_frame_(max_frame) {}
  // Appends bytes read from the socket.
  void feed(std::string_view bytes) { buffer_.append(bytes); }
  // The next whole frame's payload, nothing when more bytes are needed, or an error (an empty or
  // oversized frame): the stream cannot be trusted after that.
  Expected<std::optional<std::string>> next();
  // Bytes received that are not a whole frame yet.
  std::size_t pending() const { return buffer_.size(); }

 private:
  std::size_t max_frame_;
  std::string buffer_;
};

}  // namespace crosvisor::protocol
