#include "daemon/metrics_endpoint.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "core/unique_fd.hpp"
#include "metrics/exposition.hpp"
#include "protocol/framing.hpp"
#include "protocol/requests.hpp"

namespace crosvisor::daemon {
namespace {

using json = nlohmann::json;
constexpr auto kAnswerDeadline = std::chrono::seconds(10);

// Every VM's stats, asked of the daemon at `socket` as a client would.
Expected<json> ask_stats(const std::filesystem::path& socket) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, socket.c_str(), sizeof(address.sun_path) - 1);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0)
    return std::unexpected(errno_error(ErrorKind::unavailable, socket.string(), errno));
  const std::string frame = protocol::encode_frame(
      protocol::dump(protocol::encode_request(1, protocol::StatsRequest{{}, true})));
  if (::send(fd.get(), frame.data(), frame.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(frame.size()))
    return std::unexpected(errno_error(ErrorKind::unavailable, socket.string(), errno));
  protocol::FrameDecoder decoder;
  const auto deadline = std::chrono::steady_clock::now() + kAnswerDeadline;
  for (;;) {
    auto next = decoder.next();
    if (!next)
      return std::unexpected(next.error());
    if (*next) {
      json message = json::parse(**next, nullptr, false);
      if (message.is_object() && message.value("id", 0) == 1) {
        if (!message.value("ok", false))
          return make_error(ErrorKind::unavailable, message.value("error", "stats refused"));
        return message["vms"];
      }
      continue;  // an event, or a greeting
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    pollfd readable{fd.get(), POLLIN, 0};
    if (left <= 0 || ::poll(&readable, 1, static_cast<int>(left)) <= 0)
      return make_error(ErrorKind::unavailable, "crosvisord did not answer stats in time");
    char buffer[65536];
    const ssize_t n = ::recv(fd.get(), buffer, sizeof(buffer), 0);
    if (n <= 0)
      return make_error(ErrorKind::unavailable, "crosvisord hung up");
    decoder.feed(std::string_view(buffer, static_cast<std::size_t>(n)));
  }
}

}  // namespace

Expected<std::unique_ptr<metrics::HttpServer>> start_metrics(const std::string& address,
                                                             const std::filesystem::path& socket) {
  return metrics::HttpServer::start(address, [socket] {
    auto figures = metrics::own_figures(CROSVISOR_VERSION);
    auto vms = ask_stats(socket);
    figures.stats_failed = !vms.has_value();
    return metrics::exposition(vms ? *vms : json::array(), figures);
  });
}

}  // namespace crosvisor::daemon
