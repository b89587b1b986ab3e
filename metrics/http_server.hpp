// The metrics endpoint (crosvisord --metrics ADDR): a tiny HTTP/1.0 server on a thread of its
// own that answers GET /metrics with what `body` returns, one connection at a time, each with a
// deadline (a client that sends nothing cannot hold it). Anything else: 404 or 405.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "core/unique_fd.hpp"
#include "crosvisor/error.hpp"

namespace crosvisor::metrics {

class HttpServer {
 public:
  // `address`: HOST:PORT with an IPv4 address, or PORT (or :PORT) alone for 127.0.0.1; port 0:
  // any free one. invalid_config for a malformed address, io when it cannot be bound.
  static Expected<std::unique_ptr<HttpServer>> start(const std::string& address,
                                                     std::function<std::string()> body);
  ~HttpServer();  // stops accepting and joins the thread
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }
  const std::string& host() const { return host_; }

 private:
  HttpServer(UniqueFd listener, UniqueFd stop_read, UniqueFd stop_write, std::string host, int port,
             std::function<std::string()> body);
  void serve();
  void answer(int connection);

  UniqueFd listener_;
  UniqueFd stop_read_;
  UniqueFd stop_write_;
  std::string host_;
  int port_ = 0;
  std::function<std::string()> body_;
  std::thread thread_;
};

}  // namespace crosvisor::metrics
