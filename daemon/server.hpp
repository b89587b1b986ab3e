// The daemon's connections, on one I/O thread of their own: accept, check the peer
// (SO_PEERCRED), cut the byte stream into frames, take the fds that came with them
// (SCM_RIGHTS), refuse what is malformed with an error reply, and hand good requests to the
// connection's session. One connection is one session; when the connection ends, so does the
// session. No CAF here: sessions plug in through SessionSink.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
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
  virtual void send(nlohmann::json message) = 0;
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

// Bounds that keep one client from hurting the daemon or the others.
inline constexpr std::size_t kMaxConnections = 1024;
inline constexpr std::size_t kMaxQueuedOutput = 4 << 20;  // a client that stops reading

class Server {
 public:
  Server(ControlSocket socket, SessionFactory factory);
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
