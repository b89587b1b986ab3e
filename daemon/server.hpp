// The daemon's connections, on one I/O thread of their own: accept, check the peer
// (SO_PEERCRED), cut the byte stream into frames, take the fds that came with them
// (SCM_RIGHTS), refuse what is malformed with an error reply, and hand good requests to the
// connection's session. One connection is one session; when the connection ends, so does the
// session. No CAF here: sessions plug in through SessionSink.
//
// One client must not hurt the others, and an ordinary client action must never kill a VM:
//   - a client that stops reading (Ctrl-Z) loses console lines beyond a bound, counted and said
//     so when it reads again, but never a reply or a state change, and never its session;
//   - a client that sends requests without reading the replies is not read from until it does;
//   - no connection is read for long at a time: each wake-up reads a bounded share;
//   - a half-sent request is given a deadline;
//   - sessions are capped per user and in all, with room kept for root; a refused connection
//     is told why before it is closed.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/unique_fd.hpp"
#include "daemon/control_socket.hpp"
#include "protocol/requests.hpp"

namespace crosvisor::daemon {

struct PeerCredentials {
  pid_t pid = -1;
  uid_t uid = 0;
  gid_t gid = 0;
};

// A session's way back to its client; callable from any thread.
class ConnectionPort {
 public:
  virtual ~ConnectionPort() = default;
  // A reply or a state change: always delivered, in order.
  virtual void send(nlohmann::json message) = 0;
  // The same, already written as JSON text (replies too large to build as a document).
  virtual void send_text(std::string message) = 0;
  // A console line of VM `vm`: dropped (and counted) while the client is too far behind.
  virtual void send_console(nlohmann::json message, const std::string& vm) = 0;
  virtual void close() = 0;
};

// What a connection delivers to its session, on the server's thread.
class SessionSink {
 public:
  virtual ~SessionSink() = default;
  virtual void request(protocol::Request request, std::vector<UniqueFd> fds) = 0;
  virtual void closed() = 0;
};

using SessionFactory = std::function<std::unique_ptr<SessionSink>(const PeerCredentials&,
                                                                  std::shared_ptr<ConnectionPort>)>;

// Bounds that keep one client from hurting the daemon or the others (docs/protocol.md).
struct ServerLimits {
  std::size_t max_sessions = 1024;         // in all
  std::size_t max_sessions_per_user = 64;  // for each user but root
  std::size_t root_reserve = 16;           // of max_sessions, kept for root
  std::size_t console_backlog = 1 << 20;   // queued bytes beyond which console lines are dropped
  std::size_t reply_backlog = 4 << 20;     // queued bytes beyond which requests are not read
  std::chrono::milliseconds frame_deadline{10'000};  // for a request begun but not finished
  std::size_t read_budget = 64 << 10;                // bytes read from one connection per wake-up
  std::size_t frames_per_wake = 16;  // requests taken from one connection per wake-up
};

class Server {
 public:
  Server(ControlSocket socket, SessionFactory factory, ServerLimits limits = {});
  ~Server();  // closes every connection (their sessions hear `closed`) and joins the thread
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // No new connections from now on; the open ones go on (a daemon that is going away tells its
  // clients what happens to their VMs before it hangs up).
  void stop_accepting();
  // Sends `message` to every client.
  void broadcast(nlohmann::json message);

  const std::filesystem::path& path() const;
  std::size_t connections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace crosvisor::daemon
