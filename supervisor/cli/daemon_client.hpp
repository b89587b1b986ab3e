// The `vm` command's side of the control socket: a blocking client (no actors), which sends
// requests with fds attached and reads replies and events.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "core/unique_fd.hpp"
#include "crosvisor/error.hpp"
#include "protocol/framing.hpp"
#include "supervisor/signals.hpp"

namespace crosvisor::cli {

// --socket, else $CROSVISOR_SOCKET, else the default path.
std::filesystem::path choose_socket(const std::optional<std::filesystem::path>& option);

class DaemonClient {
 public:
  // Fails with ErrorKind::not_found when nothing listens there.
  static Expected<DaemonClient> connect(const std::filesystem::path& socket);

  // Sends `request` with a fresh id (returned) and the fds attached.
  Expected<std::uint64_t> send(nlohmann::json request, const std::vector<UniqueFd>& fds = {});
  // The next message (a reply or an event); nothing when `timeout_ms` passes (-1: no limit).
  Expected<std::optional<nlohmann::json>> next(int timeout_ms = -1);
  // Sends and waits for the reply; events that come first go to `on_event`. A reply with
  // "ok": false becomes an error carrying the daemon's message.
  Expected<nlohmann::json> call(nlohmann::json request,
                                const std::function<void(const nlohmann::json&)>& on_event = {},
                                const std::vector<UniqueFd>& fds = {});
  int fd() const { return socket_.get(); }

 private:
  explicit DaemonClient(UniqueFd socket) : socket_(std::move(socket)) {}
  UniqueFd socket_;
  protocol::FrameDecoder decoder_;
  std::uint64_t next_id_ = 1;
};

// A crosvisord serving only this process, as AVF's client library starts virtmgr: a child that
// dies with us (PR_SET_PDEATHSIG), with its socket in a private directory.
struct PrivateSupervisor {
  pid_t pid = -1;
  UniqueFd pidfd;
  std::filesystem::path socket;
  PrivateRuntimeDir dir;  // ours, with the supervisor's files under it; remove it when done
};
// Once this process's session has ended: waits for the private supervisor to exit and removes
// its directory.
void finish_private_supervisor(PrivateSupervisor& supervisor);
Expected<PrivateSupervisor> start_private_supervisor(const std::vector<std::string>& extra_args,
                                                     const std::string& log_level);

}  // namespace crosvisor::cli
