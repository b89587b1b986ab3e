#include "protocol/framing.hpp"

namespace crosvisor::protocol {

std::string dump(const nlohmann::json& message) {
  return message.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string encode_frame(std::string_view payload) {
  const auto size = static_cast<std::uint32_t>(payload.size());
  std::string frame;
  frame.reserve(4 + payload.size());
  frame.push_back(static_cast<char>((size >> 24) & 0xff));
  frame.push_back(static_cast<char>((size >> 16) & 0xff));
  frame.push_back(static_cast<char>((size >> 8) & 0xff));
  frame.push_back(static_cast<char>(size & 0xff));
  frame.append(payload);
  return frame;
}

Expected<std::optional<std::string>> FrameDecoder::next() {
  if (buffer_.size() < 4)
    return std::optional<std::string>{};
  const auto byte = [&](std::size_t i) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(buffer_[i]));
  };
  const std::uint32_t size = byte(0) << 24 | byte(1) << 16 | byte(2) << 8 | byte(3);
  if (size == 0)
    return make_error(ErrorKind::protocol, "empty frame");
  if (size > max_frame_) {
    return make_error(
        ErrorKind::protocol,
        "frame of " + std::to_string(size) + " bytes; the limit is " + std::to_string(max_frame_));
  }
  if (buffer_.size() < 4 + static_cast<std::size_t>(size))
    return std::optional<std::string>{};
  std::string payload = buffer_.substr(4, size);
  buffer_.erase(0, 4 + static_cast<std::size_t>(size));
  return std::optional<std::string>{std::move(payload)};
}

}  // namespace crosvisor::protocol
