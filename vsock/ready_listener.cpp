#include "vsock/ready_listener.hpp"

#include <linux/vm_sockets.h>
#include <sys/socket.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <map>

#include "core/unique_fd.hpp"
#include "vsock/channel.hpp"
#include "vsock/ready_router.hpp"

namespace crosvisor::vsock {

using stream = boost::asio::posix::stream_descriptor;

struct ReadyListener::Impl {
  explicit Impl(boost::asio::io_context& context) : io(context) {}

  boost::asio::io_context& io;
  ReadyRouter router;
  std::map<std::uint32_t, std::unique_ptr<stream>> listeners;  // by port
  struct Waiter {
    std::uint32_t port;
    std::function<void(Expected<void>)> callback;
  };
  std::map<Token, Waiter> waiters;

  void accept(std::uint32_t port) {
    stream* listener = listeners.at(port).get();
    listener->async_wait(stream::wait_read, [this, port, listener](boost::system::error_code ec) {
      // The wait may have completed just before its listener was dropped (nobody waits on the
      // port any more), or replaced by a new one for the same port: then it is not ours.
      auto current = listeners.find(port);
      if (ec || current == listeners.end() || current->second.get() != listener)
        return;
      sockaddr_vm peer{};
      socklen_t length = sizeof(peer);
      UniqueFd connection(::accept4(listener->native_handle(), reinterpret_cast<sockaddr*>(&peer),
                                    &length, SOCK_CLOEXEC | SOCK_NONBLOCK));
      // The callback is the connection itself; a guest we do not wait for is refused by closing.
      if (connection) {
        if (auto token = router.arrived(port, peer.svm_cid)) {
          if (auto waiter = waiters.find(*token); waiter != waiters.end()) {
            auto callback = std::move(waiter->second.callback);
            waiters.erase(waiter);
            callback({});
          }
        }
      }
      if (router.listening_needed(port)) {
        accept(port);
      } else {
        listeners.erase(port);  // nobody waits on this port any more
      }
    });
  }
};

ReadyListener::ReadyListener(boost::asio::io_context& io) : impl_(std::make_unique<Impl>(io)) {}

ReadyListener::~ReadyListener() = default;

void ReadyListener::expect(Token token, std::uint32_t port, std::uint32_t cid,
                           std::function<void(Expected<void>)> ready) {
  auto& listeners = impl_->listeners;
  if (listeners.count(port) == 0) {
    auto listener = vsock_listen(port);
    if (!listener)
      return ready(std::unexpected(listener.error()));
    listeners[port] = std::make_unique<stream>(impl_->io, listener->release());
    boost::system::error_code ignored;
    listeners[port]->non_blocking(true, ignored);  // accept never waits on this thread
    impl_->accept(port);
  }
  impl_->router.expect(port, cid, token);
  impl_->waiters[token] = Impl::Waiter{port, std::move(ready)};
}

void ReadyListener::cancel(Token token) {
  impl_->router.forget(token);
  auto waiter = impl_->waiters.find(token);
  if (waiter == impl_->waiters.end())
    return;
  if (!impl_->router.listening_needed(waiter->second.port))
    impl_->listeners.erase(waiter->second.port);
  impl_->waiters.erase(waiter);
}

void ReadyListener::close_all() {
  impl_->listeners.clear();
  impl_->waiters.clear();
}

}  // namespace crosvisor::vsock
