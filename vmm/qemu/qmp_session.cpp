#include "vmm/qemu/qmp_session.hpp"

#include <sys/socket.h>
#include <sys/un.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstring>
#include <utility>

#include "core/unique_fd.hpp"
#include "process/fd_passing.hpp"
#include "vmm/qemu/qmp_protocol.hpp"

namespace crosvisor::vmm {
namespace asio = boost::asio;

struct QmpSession::Impl {
  explicit Impl(asio::io_context& context) : io(context), socket(context) {}
  asio::io_context& io;
  asio::posix::stream_descriptor socket;
  std::function<void(lifecycle::GuestNotice)> on_notice;
  std::function<void()> on_ready;  // cleared once called
  std::string open_error;          // why the session could not be opened, if it could not
  process::LineSplitter splitter{64 * 1024};
  std::array<char, 4096> buffer{};
  std::uint64_t next_id = 1;
  struct Pending {
    ControlDone done;
    std::unique_ptr<asio::steady_timer> timer;
  };
  std::map<std::uint64_t, Pending> pending;
};

QmpSession::QmpSession(asio::io_context& io, std::function<void(lifecycle::GuestNotice)> on_notice,
                       std::function<void()> on_ready)
    : impl_(std::make_unique<Impl>(io)) {
  impl_->on_notice = std::move(on_notice);
  impl_->on_ready = std::move(on_ready);
}

QmpSession::~QmpSession() = default;

void QmpSession::open(const std::filesystem::path& path) {
  open_session(path);
  // Without a session nothing will say QEMU is up: count it as started, so that it can be
  // stopped (its commands fail with open_error, and the stop escalates to signals).
  if (!impl_->open_error.empty()) {
    if (auto ready = std::exchange(impl_->on_ready, nullptr))
      ready();
  }
}

void QmpSession::open_session(const std::filesystem::path& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.native().size() >= sizeof(address.sun_path)) {
    impl_->open_error = "QMP socket path too long: " + path.string();
    return;
  }
  std::memcpy(address.sun_path, path.c_str(), path.native().size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd ||
      ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    impl_->open_error = "QMP connect " + path.string() + ": " + std::strerror(errno);
    return;
  }
  // Capabilities first; QEMU reads this after its greeting, in order, before any command.
  static const std::string negotiate = "{\"execute\":\"qmp_capabilities\"}\r\n";
  if (::send(fd.get(), negotiate.data(), negotiate.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(negotiate.size())) {
    impl_->open_error = std::string("QMP write: ") + std::strerror(errno);
    return;
  }
  impl_->socket.assign(fd.release());
  read();
}

void QmpSession::read() {
  impl_->socket.async_read_some(
      asio::buffer(impl_->buffer),
      [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
        if (ec)
          return;  // QEMU went away, or finish() closed the socket
        self->impl_->splitter.feed(std::string_view(self->impl_->buffer.data(), n),
                                   [&](std::string_view line) { self->deliver(line); });
        self->read();
      });
}

void QmpSession::deliver(std::string_view line) {
  const auto message = qmp::parse(line);
  switch (message.kind) {
    case qmp::Message::Kind::event:
      if (message.notice && impl_->on_notice)
        impl_->on_notice(*message.notice);
      return;
    case qmp::Message::Kind::reply: {
      if (!message.id) {  // the reply to qmp_capabilities
        if (auto ready = std::exchange(impl_->on_ready, nullptr))
          ready();
        return;
      }
      auto it = impl_->pending.find(*message.id);
      if (it == impl_->pending.end())
        return;  // timed out already
      auto done = std::move(it->second.done);
      impl_->pending.erase(it);
      if (message.error.empty()) {
        done({});
      } else {
        done(make_error(ErrorKind::protocol, "QMP error: " + message.error));
      }
      return;
    }
    case qmp::Message::Kind::greeting:
    case qmp::Message::Kind::invalid:
      return;
  }
}

void QmpSession::execute(ControlRequest request, std::chrono::milliseconds timeout,
                         ControlDone done) {
  send_command(qmp::command_for(request), {}, -1, timeout, std::move(done));
}

void QmpSession::dump_memory(UniqueFd file, std::chrono::milliseconds timeout, ControlDone done) {
  const std::string name = "crosvisor-dump-" + std::to_string(impl_->next_id);
  // QEMU takes the fd under a name, then writes to it and closes it; ours closes here.
  send_command("getfd", R"({"fdname": ")" + name + R"("})", file.get(), timeout,
               [self = shared_from_this(), name, timeout, done](Expected<void> taken) {
                 if (!taken)
                   return done(taken);
                 self->send_command("dump-guest-memory",
                                    R"({"paging": false, "protocol": "fd:)" + name + R"("})", -1,
                                    timeout, done);
               });
}

void QmpSession::send_command(std::string_view command, std::string_view arguments_json, int fd,
                              std::chrono::milliseconds timeout, ControlDone done) {
  if (!impl_->open_error.empty())
    return done(make_error(ErrorKind::io, impl_->open_error));
  if (!impl_->socket.is_open())
    return done(make_error(ErrorKind::io, "QMP: QEMU has exited"));
  const std::uint64_t id = impl_->next_id++;
  std::string line = qmp::command_line(command, id, arguments_json);
  const int attached[] = {fd};
  auto sent =
      process::send_with_fds(impl_->socket.native_handle(), line,
                             fd >= 0 ? std::span<const int>(attached) : std::span<const int>());
  if (!sent || *sent != line.size()) {
    return done(make_error(
        ErrorKind::io, "QMP write: " + (sent ? std::string("short write") : sent.error().message)));
  }
  auto timer = std::make_unique<asio::steady_timer>(impl_->io, timeout);
  timer->async_wait([self = shared_from_this(), id](boost::system::error_code ec) {
    auto it = self->impl_->pending.find(id);
    if (ec || it == self->impl_->pending.end())
      return;
    auto expired = std::move(it->second.done);
    self->impl_->pending.erase(it);
    expired(make_error(ErrorKind::protocol, "QMP: no answer in time"));
  });
  impl_->pending.emplace(id, Impl::Pending{std::move(done), std::move(timer)});
}

void QmpSession::finish() {
  if (impl_->socket.is_open()) {
    boost::system::error_code ec;
    impl_->socket.non_blocking(true, ec);
    while (!ec) {
      const std::size_t n = impl_->socket.read_some(asio::buffer(impl_->buffer), ec);
      if (!ec) {
        impl_->splitter.feed(std::string_view(impl_->buffer.data(), n),
                             [&](std::string_view line) { deliver(line); });
      }
    }
    impl_->splitter.flush([&](std::string_view line) { deliver(line); });
    impl_->socket.close(ec);
  }
  fail_all("QEMU exited before answering");
}

void QmpSession::fail_all(const std::string& why) {
  auto pending = std::move(impl_->pending);
  impl_->pending.clear();
  for (auto& [id, entry] : pending) {
    entry.timer->cancel();
    entry.done(make_error(ErrorKind::io, "QMP: " + why));
  }
}

}  // namespace crosvisor::vmm
