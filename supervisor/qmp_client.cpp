#include "supervisor/qmp_client.hpp"

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <memory>
#include <nlohmann/json.hpp>

namespace crosvisor {
namespace asio = boost::asio;
namespace {

class QmpExchange : public std::enable_shared_from_this<QmpExchange> {
 public:
  QmpExchange(asio::io_context& io, std::string command, QmpDone done)
      : socket_(io), timer_(io), command_(std::move(command)), done_(std::move(done)) {}

  void start(const std::filesystem::path& path, std::chrono::milliseconds timeout) {
    timer_.expires_after(timeout);
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec)
        self->finish(make_error(ErrorKind::protocol, "QMP: no answer in time"));
    });
    socket_.async_connect(
        asio::local::stream_protocol::endpoint(path.string()),
        [self = shared_from_this()](boost::system::error_code ec) {
          if (ec)
            return self->finish(make_error(ErrorKind::io, "QMP connect: " + ec.message()));
          self->read_line();  // the greeting
        });
  }

 private:
  enum class Stage { greeting, capabilities, command };

  void read_line() {
    asio::async_read_until(
        socket_, asio::dynamic_buffer(buffer_), '\n',
        [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
          if (ec)
            return self->finish(make_error(ErrorKind::io, "QMP read: " + ec.message()));
          std::string line = self->buffer_.substr(0, n);
          self->buffer_.erase(0, n);
          self->on_line(line);
        });
  }

  void send(const std::string& name) {
    outgoing_ = nlohmann::json{{"execute", name}}.dump() + "\r\n";
    asio::async_write(
        socket_, asio::buffer(outgoing_),
        [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
          if (ec)
            return self->finish(make_error(ErrorKind::io, "QMP write: " + ec.message()));
          self->read_line();
        });
  }

  void on_line(const std::string& line) {
    const auto message = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (message.is_discarded() || !message.is_object()) {
      return finish(make_error(ErrorKind::protocol, "QMP: not JSON: " + line));
    }
    if (message.contains("event"))
      return read_line();  // events may precede any reply
    switch (stage_) {
      case Stage::greeting:
        if (!message.contains("QMP"))
          return finish(make_error(ErrorKind::protocol, "QMP: no greeting"));
        stage_ = Stage::capabilities;
        return send("qmp_capabilities");
      case Stage::capabilities:
      case Stage::command:
        if (message.contains("error")) {
          return finish(
              make_error(ErrorKind::protocol,
                         "QMP error: " + message["error"].value("desc", std::string("?"))));
        }
        if (!message.contains("return"))
          return read_line();
        if (stage_ == Stage::command)
          return finish({});
        stage_ = Stage::command;
        return send(command_);
    }
  }

  void finish(Expected<void> result) {
    if (!done_)
      return;
    auto done = std::move(done_);
    done_ = nullptr;
    boost::system::error_code ignored;
    timer_.cancel();
    socket_.close(ignored);
    done(std::move(result));
  }

  asio::local::stream_protocol::socket socket_;
  asio::steady_timer timer_;
  std::string command_;
  QmpDone done_;
  Stage stage_ = Stage::greeting;
  std::string buffer_;
  std::string outgoing_;
};

}  // namespace

void qmp_execute(asio::io_context& io, const std::filesystem::path& socket, std::string command,
                 std::chrono::milliseconds timeout, QmpDone done) {
  std::make_shared<QmpExchange>(io, std::move(command), std::move(done))->start(socket, timeout);
}

}  // namespace crosvisor
