// Readiness through vsock callbacks (AVF's payload callback), on an io_context's thread: while
// anyone waits on a host port, one non-blocking listener accepts the guests' connections there,
// and ReadyRouter tells which waiter each one readies. A guest nobody waits for is refused by
// closing its connection. Not thread-safe: call it on the thread that runs `io`.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "crosvisor/error.hpp"

namespace boost::asio {
class io_context;
}

namespace crosvisor::vsock {

class ReadyListener {
 public:
  using Token = std::uint64_t;

  explicit ReadyListener(boost::asio::io_context& io);
  ~ReadyListener();
  ReadyListener(const ReadyListener&) = delete;
  ReadyListener& operator=(const ReadyListener&) = delete;

  // Calls `ready` once, when the guest with `cid` connects to host port `port`; or at once, with
  // the error, when the host cannot listen there.
  void expect(Token token, std::uint32_t port, std::uint32_t cid,
              std::function<void(Expected<void>)> ready);
  // `token`'s callback will not be called; a port nobody waits on any more is closed.
  void cancel(Token token);
  // Every listener closed, no callback called (the reactor is going away).
  void close_all();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace crosvisor::vsock
