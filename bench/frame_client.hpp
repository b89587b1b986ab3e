// A client of crosvisord's control socket at the frame level, for benchmarks that measure the
// socket itself: JSON requests in frames (protocol/framing.hpp), replies read whole.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/unique_fd.hpp"
#include "process/fd_passing.hpp"
#include "protocol/framing.hpp"

namespace crosvisor::bench {

class FrameClient {
 public:
  explicit FrameClient(const std::filesystem::path& path) {
    fd_ = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
    if (::connect(fd_.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0)
      throw std::runtime_error("connect " + path.string());
  }
  void send(const nlohmann::json& message, const std::vector<int>& fds = {}) {
    if (!process::send_with_fds(fd_.get(), protocol::encode_frame(message.dump()), fds))
      throw std::runtime_error("send");
  }
  // The next frame's payload, unparsed.
  std::string receive_text() {
    for (;;) {
      auto frame = decoder_.next();
      if (frame && frame->has_value())
        return std::move(**frame);
      char buffer[65536];
      const ssize_t n = ::recv(fd_.get(), buffer, sizeof(buffer), 0);
      if (n <= 0)
        throw std::runtime_error("the server hung up");
      decoder_.feed(std::string_view(buffer, static_cast<std::size_t>(n)));
    }
  }
  nlohmann::json receive() { return nlohmann::json::parse(receive_text()); }
  int fd() const { return fd_.get(); }

 private:
  UniqueFd fd_;
  protocol::FrameDecoder decoder_{protocol::kMaxReplyFrame};
};

}  // namespace crosvisor::bench
