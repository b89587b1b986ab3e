#include "vmm/crosvm/crosvm_control.hpp"

#include <sys/socket.h>
#include <sys/un.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/unique_fd.hpp"

namespace crosvisor::vmm::crosvm {
namespace asio = boost::asio;

std::string request_datagram(ControlRequest request) {
  switch (request) {
    case ControlRequest::powerdown:
      return nlohmann::json("Powerbtn").dump();
    case ControlRequest::quit:
      break;
  }
  return nlohmann::json("Exit").dump();
}

Expected<void> check_response(std::string_view datagram) {
  const auto json = nlohmann::json::parse(datagram, nullptr, /*allow_exceptions=*/false);
  if (json.is_string() && json.get<std::string>() == "Ok")
    return {};
  // VmResponse::Err: crosvm understood and cannot do it (no power button on aarch64).
  if (json.is_object() && json.contains("Err"))
    return make_error(ErrorKind::state, "crosvm refused: " + std::string(datagram.substr(0, 200)));
  return make_error(ErrorKind::protocol,
                    "crosvm control: unexpected answer " + std::string(datagram.substr(0, 200)));
}

namespace {

struct Exchange {
  Exchange(asio::io_context& io, int fd, ControlDone callback)
      : socket(io, fd), timer(io), done(std::move(callback)) {}
  asio::posix::stream_descriptor socket;
  asio::steady_timer timer;
  ControlDone done;

  void finish(Expected<void> result) {
    if (!done)
      return;
    auto callback = std::move(done);
    done = nullptr;
    boost::system::error_code ignored;
    timer.cancel();
    socket.close(ignored);
    callback(std::move(result));
  }
};

}  // namespace

void execute(asio::io_context& io, const std::filesystem::path& path, ControlRequest request,
             std::chrono::milliseconds timeout, ControlDone done) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.native().size() >= sizeof(address.sun_path))
    return done(make_error(ErrorKind::io, "control socket path too long: " + path.string()));
  std::memcpy(address.sun_path, path.c_str(), path.native().size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd)
    return done(std::unexpected(errno_error(ErrorKind::io, "socket", errno)));
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    return done(std::unexpected(errno_error(ErrorKind::io, "connect " + path.string(), errno)));
  }
  const std::string datagram = request_datagram(request);
  if (::send(fd.get(), datagram.data(), datagram.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(datagram.size())) {
    return done(std::unexpected(errno_error(ErrorKind::io, "send " + path.string(), errno)));
  }
  auto exchange = std::make_shared<Exchange>(io, fd.release(), std::move(done));
  exchange->timer.expires_after(timeout);
  exchange->timer.async_wait([exchange](boost::system::error_code ec) {
    if (!ec)
      exchange->finish(make_error(ErrorKind::protocol, "crosvm control: no answer in time"));
  });
  exchange->socket.async_wait(
      asio::posix::stream_descriptor::wait_read, [exchange](boost::system::error_code ec) {
        if (ec)
          return;
        std::array<char, 4096> answer{};
        const ssize_t n = ::recv(exchange->socket.native_handle(), answer.data(), answer.size(), 0);
        if (n <= 0) {
          return exchange->finish(
              make_error(ErrorKind::io, "crosvm control: the VMM closed the connection"));
        }
        exchange->finish(check_response(std::string_view(answer.data(), static_cast<size_t>(n))));
      });
}

}  // namespace crosvisor::vmm::crosvm
