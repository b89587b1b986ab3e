#include "daemon/server.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "protocol/framing.hpp"
#include "protocol/replies.hpp"

namespace crosvisor::daemon {
namespace asio = boost::asio;
using stream = asio::posix::stream_descriptor;

namespace {

// Sessions hold their connection and may outlive the server's I/O thread: every way into the
// io_context goes through this gate, which the server closes before the io_context goes.
struct Gate {
  std::mutex mutex;
  asio::io_context* io = nullptr;

  template <class Job>
  void post(Job job) {
    std::lock_guard lock(mutex);
    if (io)
      asio::post(*io, std::move(job));
  }
};

// Writes one frame straight to a socket nobody else uses yet (a connection refused at accept).
void refuse_now(int fd, const Error& why) {
  const std::string frame =
      protocol::encode_frame(protocol::dump(protocol::error_reply(std::nullopt, why)));
  [[maybe_unused]] auto n = ::send(fd, frame.data(), frame.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

class Connection : public ConnectionPort, public std::enable_shared_from_this<Connection> {
 public:
  Connection(asio::io_context& io, std::shared_ptr<Gate> gate, UniqueFd fd,
             const ServerLimits& limits, std::function<void(Connection*)> on_gone)
      : gate_(std::move(gate)),
        limits_(limits),
        socket_(std::make_unique<stream>(io, fd.release())),
        deadline_(std::make_unique<asio::steady_timer>(io)),
        on_gone_(std::move(on_gone)) {}

  void start(std::unique_ptr<SessionSink> sink) {
    sink_ = std::move(sink);
    wait_readable();
  }

  void send(nlohmann::json message) override { send_text(protocol::dump(message)); }

  void send_text(std::string message) override {
    gate_->post([self = shared_from_this(), text = std::move(message)] {
      self->queue(protocol::encode_frame(text));
    });
  }

  void send_console(nlohmann::json message, const std::string& vm) override {
    gate_->post([self = shared_from_this(), text = protocol::dump(message), vm] {
      self->queue_console(protocol::encode_frame(text), vm);
    });
  }

  void close() override {
    gate_->post([self = shared_from_this()] { self->shut(); });
  }

  // On the server thread: closes once what is queued for the client has been written.
  void finish() {
    if (closed_)
      return;
    flush_then_close_ = true;
    if (!writing_)
      shut();
  }

  // On the server thread.
  void shut() {
    if (closed_)
      return;
    closed_ = true;
    boost::system::error_code ignored;
    deadline_->cancel();
    socket_->close(ignored);
    // Both here, on the I/O thread, while the io_context lives: a session may hold this
    // connection after the server is gone, and the io_context with it.
    socket_.reset();
    deadline_.reset();
    pending_fds_.clear();
    if (sink_) {
      sink_->closed();
      sink_.reset();
    }
    on_gone_(this);
  }

 private:
  void wait_readable() {
    if (reading_ || closed_)
      return;
    reading_ = true;
    socket_->async_wait(stream::wait_read,
                        [self = shared_from_this()](boost::system::error_code ec) {
                          self->reading_ = false;
                          if (ec || self->closed_)
                            return;
                          if (self->read_some())
                            self->wait_readable();
                        });
  }

  // Whether the client is so far behind on its replies that its requests wait.
  bool paused() const { return output_.size() > limits_.reply_backlog; }

  // Takes at most one wake-up's share of requests; false when the connection ended, reading
  // pauses (the client does not read its replies: it is read again once it does), or the share
  // is spent with requests left over (taken on a later turn, after the other connections').
  bool read_some() {
    std::size_t budget = limits_.read_budget;
    std::size_t frames = 0;
    for (;;) {
      // What has been read already first.
      while (frames < limits_.frames_per_wake) {
        auto frame = decoder_.next();
        if (!frame)
          return refuse_and_close(frame.error().message);
        if (!frame->has_value())
          break;
        deliver(**frame);
        ++frames;
        if (closed_)
          return false;
      }
      if (frames >= limits_.frames_per_wake || budget == 0) {
        take_turn_later();
        return false;
      }
      if (paused())
        return false;  // resumed by write_some
      std::array<char, 65536> data;
      alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int) * protocol::kMaxFdsPerMessage)>
          control{};
      iovec vector{data.data(), std::min(data.size(), budget)};
      msghdr message{};
      message.msg_iov = &vector;
      message.msg_iovlen = 1;
      message.msg_control = control.data();
      message.msg_controllen = control.size();
      const ssize_t n =
          ::recvmsg(socket_->native_handle(), &message, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        watch_partial_frame();
        return true;
      }
      if (n < 0 && errno == EINTR)
        continue;
      // Whatever fds came are ours to close, whatever else happens.
      for (cmsghdr* c = CMSG_FIRSTHDR(&message); c != nullptr; c = CMSG_NXTHDR(&message, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
          continue;
        const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const int* fds = reinterpret_cast<const int*>(CMSG_DATA(c));
        for (std::size_t i = 0; i < count; ++i)
          pending_fds_.emplace_back(fds[i]);
      }
      if (n <= 0) {
        shut();  // end of stream, or an error
        return false;
      }
      // The kernel could not give us every fd (this process is out of them, or a client sent
      // more than one message carries): the request they came with is refused, not the session.
      if (message.msg_flags & MSG_CTRUNC)
        fds_lost_ = true;
      budget -= static_cast<std::size_t>(n);
      decoder_.feed(std::string_view(data.data(), static_cast<std::size_t>(n)));
    }
  }

  // Back in line behind everything else the I/O thread has to do.
  void take_turn_later() {
    if (turn_pending_)
      return;
    turn_pending_ = true;
    asio::post(socket_->get_executor(), [self = shared_from_this()] {
      self->turn_pending_ = false;
      if (self->closed_ || self->reading_)
        return;
      if (self->read_some())
        self->wait_readable();
    });
  }

  // A request begun but not finished within the deadline ends the session: it would hold a
  // session slot, and its fds, for as long as the client liked.
  void watch_partial_frame() {
    if (closed_)
      return;
    if (decoder_.pending() == 0) {
      if (deadline_armed_) {
        deadline_armed_ = false;
        deadline_->cancel();
      }
      return;
    }
    if (deadline_armed_)
      return;
    deadline_armed_ = true;
    deadline_->expires_after(limits_.frame_deadline);
    deadline_->async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->closed_ || !self->deadline_armed_)
        return;
      self->refuse_and_close(
          fmt::format("a request was left half-sent for {:g} s",
                      static_cast<double>(self->limits_.frame_deadline.count()) / 1000));
    });
  }

  void deliver(const std::string& payload) {
    std::vector<UniqueFd> fds = std::move(pending_fds_);
    pending_fds_.clear();
    const bool lost = std::exchange(fds_lost_, false);
    std::optional<std::uint64_t> id;
    auto request = protocol::parse_request(payload, id);
    if (!request) {
      queue_json(protocol::error_reply(id, request.error()));
      return;  // `fds` close here
    }
    if (lost) {
      queue_json(protocol::error_reply(
          id, Error{ErrorKind::limit,
                    "crosvisord could not take the fds of this request (it is out of file "
                    "descriptors, or more than " +
                        std::to_string(protocol::kMaxFdsPerMessage) + " came with one message)"}));
      return;
    }
    if (fds.size() > protocol::kMaxFdsPerRequest) {
      queue_json(protocol::error_reply(
          id, Error{ErrorKind::limit,
                    std::to_string(fds.size()) + " fds came with one request, " + "more than the " +
                        std::to_string(protocol::kMaxFdsPerRequest) + " a request may carry"}));
      return;
    }
    if (!protocol::takes_fds(request->body) && !fds.empty()) {
      queue_json(protocol::error_reply(
          id, Error{ErrorKind::protocol,
                    std::to_string(fds.size()) + " fds came with a request that takes none"}));
      return;
    }
    if (sink_)
      sink_->request(std::move(*request), std::move(fds));
  }

  bool refuse_and_close(const std::string& why) {
    spdlog::warn("control socket: closing a session: {}", why);
    queue_json(protocol::error_reply(std::nullopt, Error{ErrorKind::protocol, why}));
    flush_then_close_ = true;
    if (!writing_)
      shut();
    return false;
  }

  void queue_json(const nlohmann::json& message) {
    queue(protocol::encode_frame(protocol::dump(message)));
  }

  // Replies and state changes are never dropped: their volume is bounded by the requests read,
  // and reading stops while the client is behind.
  void queue(std::string frame) {
    if (closed_)
      return;
    output_ += frame;
    if (!writing_)
      write_some();
  }

  // Console lines of a client that is behind are dropped (the log file keeps them), and
  // counted: the client hears how many once it has caught up.
  void queue_console(std::string frame, const std::string& vm) {
    if (closed_)
      return;
    if (output_.size() + frame.size() > limits_.console_backlog) {
      ++dropped_[vm];
      return;
    }
    queue(std::move(frame));
  }

  void write_some() {
    while (!output_.empty()) {
      const ssize_t n = ::send(socket_->native_handle(), output_.data(), output_.size(),
                               MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        output_.erase(0, static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        writing_ = true;
        socket_->async_wait(stream::wait_write,
                            [self = shared_from_this()](boost::system::error_code ec) {
                              self->writing_ = false;
                              if (ec || self->closed_)
                                return;
                              self->write_some();
                            });
        return;
      }
      return shut();  // the peer is gone
    }
    if (flush_then_close_)
      return shut();
    // Caught up: what it missed, then its requests again (those already read first).
    if (!dropped_.empty()) {
      auto dropped = std::move(dropped_);
      dropped_.clear();
      for (const auto& [vm, lines] : dropped)
        queue_json({{"event", "console_dropped"}, {"vm", vm}, {"lines", lines}});
    }
    if (!reading_)
      take_turn_later();
  }

  std::shared_ptr<Gate> gate_;
  const ServerLimits limits_;
  std::unique_ptr<stream> socket_;                // reset when the connection is shut
  std::unique_ptr<asio::steady_timer> deadline_;  // for a half-sent request
  std::function<void(Connection*)> on_gone_;
  std::unique_ptr<SessionSink> sink_;
  protocol::FrameDecoder decoder_;
  std::vector<UniqueFd> pending_fds_;
  std::string output_;
  std::map<std::string, std::uint64_t> dropped_;  // console lines, by VM
  bool reading_ = false;
  bool writing_ = false;
  bool closed_ = false;
  bool flush_then_close_ = false;
  bool fds_lost_ = false;
  bool deadline_armed_ = false;
  bool turn_pending_ = false;
};

}  // namespace

struct Server::Impl {
  ControlSocket socket;
  SessionFactory factory;
  ServerLimits limits;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  stream listener{io};
  asio::steady_timer retry{io};
  std::set<std::shared_ptr<Connection>> connections;  // server thread only
  std::map<const Connection*, uid_t> owners;          // server thread only
  std::map<uid_t, std::size_t> per_user;              // server thread only
  std::shared_ptr<Gate> gate = std::make_shared<Gate>();
  std::atomic<std::size_t> count{0};
  bool closing = false;  // the server is going away: it ends once every connection has
  std::thread thread;

  void finish_if_closed() {
    if (closing && connections.empty()) {
      retry.cancel();
      work.reset();
    }
  }

  // Why this new session must be refused, if it must: a user at its cap, or a daemon full but
  // for the room kept for root.
  std::optional<Error> refusal(uid_t uid) const {
    if (uid == 0) {
      if (connections.size() >= limits.max_sessions + limits.root_reserve)
        return Error{ErrorKind::limit, "crosvisord serves " + std::to_string(connections.size()) +
                                           " sessions, the most it may"};
      return std::nullopt;
    }
    const auto mine = per_user.count(uid) ? per_user.at(uid) : 0;
    if (mine >= limits.max_sessions_per_user)
      return Error{ErrorKind::limit, "you have " + std::to_string(mine) +
                                         " sessions open with this crosvisord, the most one user "
                                         "may (--max-sessions-per-user)"};
    if (connections.size() >= limits.max_sessions)
      return Error{ErrorKind::limit, "crosvisord serves " + std::to_string(connections.size()) +
                                         " sessions, the most it may (--max-sessions)"};
    return std::nullopt;
  }

  void forget(Connection* gone) {
    for (auto it = connections.begin(); it != connections.end(); ++it) {
      if (it->get() != gone)
        continue;
      asio::post(io, [keep = *it] {});  // outlive the handler that is running
      connections.erase(it);
      if (auto owner = owners.find(gone); owner != owners.end()) {
        if (--per_user[owner->second] == 0)
          per_user.erase(owner->second);
        owners.erase(owner);
      }
      count.store(connections.size());
      finish_if_closed();
      return;
    }
  }

  void accept_next() {
    listener.async_wait(stream::wait_read, [this](boost::system::error_code ec) {
      if (ec)
        return;
      for (;;) {
        UniqueFd fd(
            ::accept4(listener.native_handle(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
        if (!fd && (errno == EMFILE || errno == ENFILE)) {
          // Out of fds: the listener stays readable, so waiting on it again would spin. Come
          // back when some fds may have been released.
          spdlog::warn("control socket: out of file descriptors; pausing accepts");
          retry.expires_after(std::chrono::milliseconds(100));
          retry.async_wait([this](boost::system::error_code timer_ec) {
            if (!timer_ec)
              accept_next();
          });
          return;
        }
        if (!fd)
          break;
        ucred peer{};
        socklen_t size = sizeof(peer);
        if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &peer, &size) != 0)
          continue;
        if (auto refused = refusal(peer.uid)) {
          spdlog::warn("control socket: refusing a session of uid {}: {}", peer.uid,
                       refused->message);
          refuse_now(fd.get(), *refused);
          continue;  // `fd` closes
        }
        auto connection = std::make_shared<Connection>(io, gate, std::move(fd), limits,
                                                       [this](Connection* gone) { forget(gone); });
        connections.insert(connection);
        owners[connection.get()] = peer.uid;
        ++per_user[peer.uid];
        count.store(connections.size());
        connection->start(factory(PeerCredentials{peer.pid, peer.uid, peer.gid}, connection));
      }
      accept_next();
    });
  }
};

Server::Server(ControlSocket socket, SessionFactory factory, ServerLimits limits)
    : impl_(std::make_unique<Impl>()) {
  impl_->socket = std::move(socket);
  impl_->factory = std::move(factory);
  impl_->limits = limits;
  impl_->listener.assign(fcntl(impl_->socket.listener.get(), F_DUPFD_CLOEXEC, 3));
  impl_->gate->io = &impl_->io;
  impl_->accept_next();
  impl_->thread = std::thread([impl = impl_.get()] { impl->io.run(); });
}

Server::~Server() {
  asio::post(impl_->io, [impl = impl_.get()] {
    boost::system::error_code ignored;
    impl->listener.close(ignored);
    impl->retry.cancel();
    // What the clients were told last (their VMs' deaths) goes out before the hang-up; a client
    // that does not read gets a moment, then is cut off.
    impl->closing = true;
    impl->retry.expires_after(std::chrono::seconds(2));
    impl->retry.async_wait([impl](boost::system::error_code ec) {
      if (ec)
        return;
      auto rest = impl->connections;
      for (auto& connection : rest)
        connection->shut();
      impl->work.reset();
    });
    auto all = impl->connections;
    for (auto& connection : all)
      connection->finish();
    impl->finish_if_closed();
  });
  impl_->thread.join();
  // Sessions may still hold their connections: from now on they reach nothing.
  std::lock_guard lock(impl_->gate->mutex);
  impl_->gate->io = nullptr;
}

void Server::stop_accepting() {
  asio::post(impl_->io, [impl = impl_.get()] {
    boost::system::error_code ignored;
    impl->listener.close(ignored);
    impl->retry.cancel();
    impl->socket.listener.reset();  // connecting now fails at once
  });
}

void Server::broadcast(nlohmann::json message) {
  asio::post(impl_->io, [impl = impl_.get(), message = std::move(message)] {
    for (const auto& connection : impl->connections)
      connection->send(message);
  });
}

const std::filesystem::path& Server::path() const {
  return impl_->socket.path;
}

std::size_t Server::connections() const {
  return impl_->count.load();
}

}  // namespace crosvisor::daemon
