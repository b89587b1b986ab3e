#include "metrics/http_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

namespace crosvisor::metrics {
namespace {

constexpr int kRequestDeadlineMs = 2000;
constexpr std::size_t kMaxRequest = 8192;

void send_all(int fd, const std::string& data) {
  std::size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0)
      return;
    sent += static_cast<std::size_t>(n);
  }
}

std::string response(const char* status, const std::string& type, const std::string& body) {
  return std::string("HTTP/1.0 ") + status + "\r\nContent-Type: " + type +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
         body;
}

}  // namespace

Expected<std::unique_ptr<HttpServer>> HttpServer::start(const std::string& address,
                                                        std::function<std::string()> body) {
  // PORT or :PORT alone: loopback.
  const auto colon = address.rfind(':');
  std::string host = colon == std::string::npos ? "" : address.substr(0, colon);
  if (host.empty())
    host = "127.0.0.1";
  sockaddr_in where{};
  where.sin_family = AF_INET;
  int port = -1;
  try {
    std::size_t used = 0;
    const std::string digits = colon == std::string::npos ? address : address.substr(colon + 1);
    port = std::stoi(digits, &used);
    if (used != digits.size())
      port = -1;
  } catch (const std::exception&) {
  }
  if (port < 0 || port > 65535 || ::inet_pton(AF_INET, host.c_str(), &where.sin_addr) != 1)
    return make_error(ErrorKind::invalid_config,
                      "--metrics " + address +
                          ": give PORT (on loopback) or HOST:PORT, e.g. 9464 or 127.0.0.1:9464");
  where.sin_port = htons(static_cast<std::uint16_t>(port));
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const int on = 1;
  ::setsockopt(listener.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&where), sizeof(where)) != 0 ||
      ::listen(listener.get(), 16) != 0)
    return std::unexpected(errno_error(ErrorKind::io, "--metrics " + address, errno));
  socklen_t size = sizeof(where);
  ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&where), &size);
  int stop[2];
  if (::pipe2(stop, O_CLOEXEC) != 0)
    return std::unexpected(errno_error(ErrorKind::io, "pipe", errno));
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(listener), UniqueFd(stop[0]),
                                                    UniqueFd(stop[1]), host, ntohs(where.sin_port),
                                                    std::move(body)));
}

HttpServer::HttpServer(UniqueFd listener, UniqueFd stop_read, UniqueFd stop_write, std::string host,
                       int port, std::function<std::string()> body)
    : listener_(std::move(listener)),
      stop_read_(std::move(stop_read)),
      stop_write_(std::move(stop_write)),
      host_(std::move(host)),
      port_(port),
      body_(std::move(body)),
      thread_([this] { serve(); }) {}

HttpServer::~HttpServer() {
  [[maybe_unused]] auto n = ::write(stop_write_.get(), "x", 1);
  thread_.join();
}

void HttpServer::serve() {
  for (;;) {
    pollfd fds[2] = {{listener_.get(), POLLIN, 0}, {stop_read_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0)
      continue;
    if (fds[1].revents != 0)
      return;
    UniqueFd connection(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (connection)
      answer(connection.get());
  }
}

void HttpServer::answer(int connection) {
  std::string request;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(kRequestDeadlineMs);
  while (request.find("\r\n\r\n") == std::string::npos && request.size() < kMaxRequest) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    pollfd readable{connection, POLLIN, 0};
    if (left <= 0 || ::poll(&readable, 1, static_cast<int>(left)) <= 0)
      return;
    char buffer[2048];
    const ssize_t n = ::recv(connection, buffer, sizeof(buffer), 0);
    if (n <= 0)
      return;
    request.append(buffer, static_cast<std::size_t>(n));
  }
  const auto line_end = request.find("\r\n");
  const std::string line = request.substr(0, line_end);
  if (!line.starts_with("GET ") && !line.starts_with("HEAD "))
    return send_all(connection, response("405 Method Not Allowed", "text/plain", "GET only\n"));
  const auto path_start = line.find(' ') + 1;
  const std::string path = line.substr(path_start, line.find(' ', path_start) - path_start);
  if (path != "/metrics" && !path.starts_with("/metrics?"))
    return send_all(connection, response("404 Not Found", "text/plain", "try /metrics\n"));
  send_all(connection, response("200 OK", "text/plain; version=0.0.4; charset=utf-8", body_()));
}

}  // namespace crosvisor::metrics
