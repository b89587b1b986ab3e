// The `vm` command's side of the control socket: a blocking client (no actors), which finds
// crosvisord (starting the user's own on demand), makes sure it is talking to a daemon it may
// trust with its files, sends requests with fds attached and reads replies and events. Every
// wait also watches the signals a command asked for, so Ctrl-C works at every moment.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/unique_fd.hpp"
#include "crosvisor/error.hpp"
#include "protocol/framing.hpp"
#include "protocol/requests.hpp"

namespace crosvisor::cli {

class DaemonClient {
 public:
  // Connects to the daemon at `socket`, after checking that the socket's directory is the
  // user's (or root's) and nobody else's to write, and before sending anything, that the peer
  // runs as the user or as root (SO_PEERCRED): a client never hands its fds to a stranger.
  // Fails with ErrorKind::unavailable when nothing listens there.
  static Expected<DaemonClient> connect(const std::filesystem::path& socket);

  // Waits also watch this signalfd: a signal ends them with ErrorKind::interrupted (the signal
  // number is in last_signal()), unless `on_signal` handles it and returns true.
  void watch_signals(int signal_fd, std::function<bool(int)> on_signal = {}) {
    signal_fd_ = signal_fd;
    on_signal_ = std::move(on_signal);
  }
  int last_signal() const { return last_signal_; }

  // Sends `request` with a fresh id (returned) and the fds attached.
  Expected<std::uint64_t> send(const protocol::RequestBody& request,
                               const std::vector<UniqueFd>& fds = {});
  // The next message (a reply or an event); nothing when `timeout_ms` passes (-1: no limit).
  Expected<std::optional<nlohmann::json>> next(int timeout_ms = -1);
  // The same, as the frame's text.
  Expected<std::optional<std::string>> next_frame(int timeout_ms = -1);
  // Sends and waits for the reply; events that come first go to `on_event`. A reply with
  // "ok": false becomes an error of the kind the daemon named.
  Expected<nlohmann::json> call(const protocol::RequestBody& request,
                                const std::function<void(const nlohmann::json&)>& on_event = {},
                                const std::vector<UniqueFd>& fds = {});
  // Sends and waits for the reply, as call does, and returns its member `member` printed as
  // JSON with an indent of 2, without building the reply's document (a list of thousands of
  // VMs); events that come first are dropped.
  Expected<std::string> call_printing(const protocol::RequestBody& request,
                                      std::string_view member);
  int fd() const { return socket_.get(); }
  const std::filesystem::path& socket_path() const { return path_; }
  uid_t daemon_uid() const { return daemon_uid_; }

 private:
  DaemonClient(UniqueFd socket, std::filesystem::path path, uid_t uid)
      : socket_(std::move(socket)), path_(std::move(path)), daemon_uid_(uid) {}
  UniqueFd socket_;
  std::filesystem::path path_;
  uid_t daemon_uid_ = 0;
  protocol::FrameDecoder decoder_{protocol::kMaxReplyFrame};
  std::uint64_t next_id_ = 1;
  int signal_fd_ = -1;
  std::function<bool(int)> on_signal_;
  int last_signal_ = 0;
};

// Where to look for crosvisord, in order (docs/cli.md):
//   --socket PATH, else $CROSVISOR_SOCKET: that socket, and only that one;
//   else the user's own daemon (<user runtime dir>/control.sock), then, for a user other than
//   root, the host's (/run/crosvisor/control.sock, a root daemon run with --shared).
struct DaemonSearch {
  std::optional<std::filesystem::path> socket;  // --socket
  std::string log_level = "warn";               // for a daemon started on demand
  int signal_fd = -1;                           // Ctrl-C while waiting for it
};

// The first daemon that answers, or why none did (ErrorKind::unavailable when none runs).
Expected<DaemonClient> find_daemon(const DaemonSearch& search);
// The same; when none runs, starts the user's own crosvisord (at the chosen socket, else the
// user's) detached from this process, so that it serves every terminal of the user and exits
// by itself once it has nothing left to supervise; `say` tells the user.
Expected<DaemonClient> find_or_start_daemon(const DaemonSearch& search,
                                            const std::function<void(const std::string&)>& say);

}  // namespace crosvisor::cli

namespace crosvisor::cli {

// VMM binaries are looked up on the PATH of the `vm` that asks, as users expect: for a daemon of
// the user's own that was given no --qemu/--crosvm, each VM description that names no binary
// gets its VMM's default name resolved here. (A daemon of another user runs only its own.)
// `vms` are VM descriptions (protocol/spec_json.hpp), changed in place.
Expected<void> fill_default_binaries(DaemonClient& client, const std::vector<nlohmann::json*>& vms);

}  // namespace crosvisor::cli
