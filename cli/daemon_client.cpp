#include "cli/daemon_client.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "crosvisor/paths.hpp"
#include "crosvisor/vmm_binaries.hpp"
#include "process/fd_passing.hpp"
#include "process/launch.hpp"
#include "protocol/reply_scan.hpp"

namespace crosvisor::cli {
namespace {

// The error a refusal from crosvisord ({"ok": false, "error", "kind"}) stands for.
Error refusal(const std::string& kind, const std::string& message) {
  return Error{kind_named(kind).value_or(ErrorKind::protocol),
               message.empty() ? std::string("refused") : message};
}

// Seconds a daemon started on demand stays up with nothing to supervise.
constexpr const char* kIdleExitSeconds = "10";

Expected<void> check_socket_dir(const std::filesystem::path& socket) {
  auto dir = socket.parent_path();
  if (dir.empty())
    dir = ".";
  if (auto checked = check_private_dir(dir); !checked) {
    if (checked.error().kind == ErrorKind::not_found)
      return make_error(ErrorKind::unavailable, "no crosvisord at " + socket.string());
    return make_error(ErrorKind::permission, "not trusting the crosvisord socket " +
                                                 socket.string() + ": " + checked.error().message);
  }
  return {};
}

// Reads one signal from `signal_fd`: its number.
int read_signal(int signal_fd) {
  signalfd_siginfo info{};
  if (::read(signal_fd, &info, sizeof(info)) != sizeof(info))
    return 0;
  return static_cast<int>(info.ssi_signo);
}

}  // namespace

Expected<DaemonClient> DaemonClient::connect(const std::filesystem::path& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.native().size() >= sizeof(address.sun_path))
    return make_error(ErrorKind::invalid_config, path.string() + ": socket path too long");
  if (auto trusted = check_socket_dir(path); !trusted)
    return std::unexpected(trusted.error());
  std::memcpy(address.sun_path, path.c_str(), path.native().size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd)
    return std::unexpected(errno_error(ErrorKind::io, "socket", errno));
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    // Nothing there, or a daemon that does not serve this user (a root daemon without
    // --shared): for this user, no daemon.
    const int saved = errno;
    const auto kind = saved == ENOENT || saved == ECONNREFUSED || saved == EACCES
                          ? ErrorKind::unavailable
                          : ErrorKind::io;
    return std::unexpected(errno_error(kind, "no crosvisord at " + path.string(), saved));
  }
  ucred peer{};
  socklen_t size = sizeof(peer);
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &peer, &size) != 0)
    return std::unexpected(errno_error(ErrorKind::io, "SO_PEERCRED on " + path.string(), errno));
  if (peer.uid != 0 && peer.uid != ::geteuid()) {
    return make_error(ErrorKind::permission, "the process serving " + path.string() + " (pid " +
                                                 std::to_string(peer.pid) + ") runs as uid " +
                                                 std::to_string(peer.uid) +
                                                 ", neither you nor root: not sending it anything");
  }
  return DaemonClient(std::move(fd), path, peer.uid);
}

Expected<std::uint64_t> DaemonClient::send(const protocol::RequestBody& request,
                                           const std::vector<UniqueFd>& fds) {
  const std::uint64_t id = next_id_++;
  const std::string payload = protocol::dump(protocol::encode_request(id, request));
  // Said here, with the real reason, rather than as the broken pipe the daemon would leave.
  if (payload.size() > protocol::kMaxFrame) {
    // A fleet's VMs all go in its one request: about 350 bytes each, so some 3 000 at most.
    const bool fleet = std::holds_alternative<protocol::FleetUpRequest>(request);
    return make_error(ErrorKind::limit,
                      "the request (" + std::string(protocol::op_of(request)) + ") is " +
                          std::to_string(payload.size()) + " bytes of JSON, more than the " +
                          std::to_string(protocol::kMaxFrame) + " a request may be" +
                          (fleet ? ": split the fleet into several fleet files, each brought up "
                                   "with its own vm fleet up"
                                 : ""));
  }
  if (fds.size() > protocol::kMaxFdsPerRequest) {
    return make_error(ErrorKind::limit, "the request carries " + std::to_string(fds.size()) +
                                            " files, more than the " +
                                            std::to_string(protocol::kMaxFdsPerRequest) +
                                            " one request may");
  }
  const std::string frame = protocol::encode_frame(payload);
  std::vector<int> numbers;
  for (const auto& fd : fds)
    numbers.push_back(fd.get());
  // At most one sendmsg's worth of fds rides with each piece of the frame: a piece of one byte
  // for each full batch, then the rest of the frame with the last one.
  std::size_t sent = 0;
  std::size_t fds_sent = 0;
  while (sent < frame.size()) {
    const std::size_t batch = std::min(numbers.size() - fds_sent, protocol::kMaxFdsPerMessage);
    const bool more_fds_after = fds_sent + batch < numbers.size();
    const std::size_t piece = more_fds_after ? 1 : frame.size() - sent;
    const std::vector<int> attached(
        numbers.begin() + static_cast<std::ptrdiff_t>(fds_sent),
        numbers.begin() + static_cast<std::ptrdiff_t>(fds_sent + batch));
    auto n = process::send_with_fds(socket_.get(), std::string_view(frame).substr(sent, piece),
                                    attached);
    if (!n) {
      // The daemon may have said why it hung up (too many sessions, say): that is the error.
      if (auto said = next(200); said && said->has_value() && !(**said).value("ok", true))
        return make_error(
            kind_named((**said).value("kind", std::string())).value_or(ErrorKind::unavailable),
            (**said).value("error", std::string("refused")));
      return make_error(ErrorKind::unavailable, "send to crosvisord: " + n.error().message);
    }
    sent += *n;
    fds_sent += batch;
  }
  return id;
}

Expected<std::optional<nlohmann::json>> DaemonClient::next(int timeout_ms) {
  auto frame = next_frame(timeout_ms);
  if (!frame)
    return std::unexpected(frame.error());
  if (!frame->has_value())
    return std::optional<nlohmann::json>();
  auto message = nlohmann::json::parse(**frame, nullptr, false);
  if (message.is_discarded() || !message.is_object())
    return make_error(ErrorKind::protocol, "crosvisord sent something that is not JSON");
  return std::optional<nlohmann::json>(std::move(message));
}

Expected<std::optional<std::string>> DaemonClient::next_frame(int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    auto frame = decoder_.next();
    if (!frame)
      return std::unexpected(frame.error());
    if (frame->has_value())
      return std::move(*frame);
    int wait_ms = -1;
    if (timeout_ms >= 0) {
      wait_ms = static_cast<int>(std::max<std::int64_t>(
          0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                   std::chrono::steady_clock::now())
                 .count()));
    }
    pollfd waits[2] = {{socket_.get(), POLLIN, 0}, {signal_fd_, POLLIN, 0}};
    const int ready = ::poll(waits, signal_fd_ >= 0 ? 2 : 1, wait_ms);
    if (ready < 0 && errno == EINTR)
      continue;
    if (ready == 0)
      return std::optional<std::string>();
    if (signal_fd_ >= 0 && (waits[1].revents & POLLIN)) {
      last_signal_ = read_signal(signal_fd_);
      if (!on_signal_ || !on_signal_(last_signal_))
        return make_error(ErrorKind::interrupted, "interrupted");
      continue;
    }
    std::array<char, 65536> buffer;
    const ssize_t n = ::recv(socket_.get(), buffer.data(), buffer.size(), 0);
    if (n == 0)
      return make_error(ErrorKind::unavailable, "crosvisord closed the connection");
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return std::unexpected(errno_error(ErrorKind::unavailable, "read from crosvisord", errno));
    }
    decoder_.feed(std::string_view(buffer.data(), static_cast<std::size_t>(n)));
  }
}

Expected<nlohmann::json> DaemonClient::call(
    const protocol::RequestBody& request,
    const std::function<void(const nlohmann::json&)>& on_event, const std::vector<UniqueFd>& fds) {
  auto id = send(request, fds);
  if (!id)
    return std::unexpected(id.error());
  const auto refusal_in = [](const nlohmann::json& reply) {
    return refusal(reply.value("kind", std::string()), reply.value("error", std::string()));
  };
  for (;;) {
    auto message = next();
    if (!message)
      return std::unexpected(message.error());
    auto& json = **message;
    if (json.contains("event")) {
      if (on_event)
        on_event(json);
      continue;
    }
    if (!json.contains("id") || json["id"] != *id) {
      if (json.value("ok", true) == false)  // a refusal of the stream itself
        return std::unexpected(refusal_in(json));
      continue;
    }
    if (!json.value("ok", false))
      return std::unexpected(refusal_in(json));
    return std::move(json);  // a list of thousands of VMs is megabytes: not copied
  }
}

Expected<std::string> DaemonClient::call_printing(const protocol::RequestBody& request,
                                                  std::string_view member) {
  auto id = send(request);
  if (!id)
    return std::unexpected(id.error());
  for (;;) {
    auto frame = next_frame();
    if (!frame)
      return std::unexpected(frame.error());
    auto reply = protocol::scan_reply(**frame, member);
    if (!reply)
      return std::unexpected(reply.error());
    if (reply->event)
      continue;
    if (reply->id != *id) {
      if (!reply->ok.value_or(true))  // a refusal of the stream itself
        return std::unexpected(refusal(reply->kind, reply->error));
      continue;
    }
    if (!reply->ok.value_or(false))
      return std::unexpected(refusal(reply->kind, reply->error));
    if (!reply->member)
      return make_error(ErrorKind::protocol,
                        "crosvisord's reply has no \"" + std::string(member) + "\"");
    return std::move(*reply->member);
  }
}

namespace {

std::vector<std::filesystem::path> candidates(const DaemonSearch& search, Error& why_none) {
  if (search.socket)
    return {*search.socket};
  if (const char* from_env = std::getenv("CROSVISOR_SOCKET"); from_env && *from_env)
    return {from_env};
  std::vector<std::filesystem::path> sockets;
  if (auto own = user_control_socket())
    sockets.push_back(*own);
  else
    why_none = own.error();
  if (::geteuid() != 0)
    sockets.push_back(system_control_socket());
  return sockets;
}

// The last line crosvisord logged: why a daemon started on demand did not come up.
std::string last_log_line(const std::filesystem::path& log) {
  std::ifstream in(log);
  std::string line, last;
  while (std::getline(in, line)) {
    if (!line.empty())
      last = line;
  }
  return last;
}

// Starts crosvisord detached (its own session, not our child: it outlives this command and
// serves the user's other terminals), with this command's environment, so that it looks VMM
// binaries up on the user's PATH. Returns a pipe that yields a byte once it serves, or
// end-of-file if it gave up.
Expected<UniqueFd> spawn_detached_daemon(const std::filesystem::path& socket,
                                         const std::string& log_level) {
  // One level only: a mistyped --socket must not leave a tree of directories behind.
  const auto dir = socket.parent_path();
  std::error_code ec;
  if (std::filesystem::create_directory(dir, ec))
    ::chmod(dir.c_str(), 0700);
  if (ec)
    return make_error(ErrorKind::unavailable, "no crosvisord at " + socket.string() +
                                                  ", and none can be started there: create " +
                                                  dir.string() + ": " + ec.message());
  if (auto checked = check_private_dir(dir); !checked)
    return make_error(ErrorKind::permission, "not starting crosvisord at " + socket.string() +
                                                 ": " + checked.error().message);
  const auto beside_us =
      std::filesystem::read_symlink("/proc/self/exe").parent_path() / "crosvisord";
  const std::string binary = std::filesystem::exists(beside_us) ? beside_us.string() : "crosvisord";
  const std::string log = (dir / "crosvisord.log").string();
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0)
    return std::unexpected(errno_error(ErrorKind::io, "pipe", errno));
  UniqueFd ready_read(ready[0]);
  UniqueFd ready_write(ready[1]);
  const std::string ready_fd = "3";
  std::vector<std::string> args = {binary,
                                   "--socket",
                                   socket.string(),
                                   "--exit-when-idle",
                                   kIdleExitSeconds,
                                   "--log-file",
                                   log,
                                   "--log-level",
                                   log_level == "warn" ? "info" : log_level,
                                   "--ready-fd",
                                   ready_fd};
  std::vector<char*> argv;
  for (auto& arg : args)
    argv.push_back(arg.data());
  argv.push_back(nullptr);
  const pid_t child = ::fork();
  if (child < 0)
    return std::unexpected(errno_error(ErrorKind::io, "fork", errno));
  if (child == 0) {
    // The middle process: a new session, then the daemon as its child, then gone, so that the
    // daemon is nobody's child but init's (or the user's subreaper's).
    ::setsid();
    const pid_t daemon = ::fork();
    if (daemon != 0)
      ::_exit(daemon < 0 ? 1 : 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    const int null = ::open("/dev/null", O_RDWR);
    const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW, 0600);
    ::dup2(null, 0);
    ::dup2(out >= 0 ? out : null, 1);
    ::dup2(out >= 0 ? out : null, 2);
    if (ready_write.get() == 3)
      ::fcntl(3, F_SETFD, 0);
    else
      ::dup2(ready_write.get(), 3);  // dup2 clears close-on-exec: the daemon inherits it
    ::close_range(4, ~0U, 0);
    ::chdir("/");
    ::execv(argv[0], argv.data());
    ::execvp("crosvisord", argv.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  return ready_read;
}

}  // namespace

Expected<DaemonClient> find_daemon(const DaemonSearch& search) {
  Error why_none{ErrorKind::unavailable, "no crosvisord"};
  const auto sockets = candidates(search, why_none);
  std::optional<Error> first_error;
  for (const auto& socket : sockets) {
    auto client = DaemonClient::connect(socket);
    if (client)
      return client;
    // A socket we must not trust is reported even when another one works: it is an attack, or
    // a mistake the user needs to know of.
    if (client.error().kind == ErrorKind::permission)
      return std::unexpected(client.error());
    if (!first_error)
      first_error = client.error();
  }
  if (sockets.empty() || !first_error)
    return std::unexpected(why_none);
  std::string tried;
  for (const auto& socket : sockets)
    tried += (tried.empty() ? "" : ", ") + socket.string();
  return make_error(ErrorKind::unavailable, "no crosvisord runs for you (looked at " + tried +
                                                "); `vm run` or `vm fleet up` starts your own");
}

Expected<DaemonClient> find_or_start_daemon(const DaemonSearch& search,
                                            const std::function<void(const std::string&)>& say) {
  auto found = find_daemon(search);
  if (found || found.error().kind != ErrorKind::unavailable)
    return found;
  std::filesystem::path socket;
  if (search.socket) {
    socket = *search.socket;
  } else if (const char* from_env = std::getenv("CROSVISOR_SOCKET"); from_env && *from_env) {
    socket = from_env;
  } else {
    auto own = user_control_socket();
    if (!own)
      return std::unexpected(own.error());
    socket = *own;
  }
  auto ready = spawn_detached_daemon(socket, search.log_level);
  if (!ready)
    return std::unexpected(ready.error());
  // A byte once it serves; end-of-file if it gave up (another daemon may have won the race to
  // the socket: then that one answers).
  pollfd waits[2] = {{ready->get(), POLLIN, 0}, {search.signal_fd, POLLIN, 0}};
  for (;;) {
    const int n = ::poll(waits, search.signal_fd >= 0 ? 2 : 1, 30'000);
    if (n < 0 && errno == EINTR)
      continue;
    if (n == 0)
      return make_error(ErrorKind::unavailable,
                        "crosvisord did not start serving " + socket.string() + " within 30 s");
    if (search.signal_fd >= 0 && (waits[1].revents & POLLIN))
      return make_error(ErrorKind::interrupted, "interrupted");
    break;
  }
  auto client = DaemonClient::connect(socket);
  if (!client) {
    const auto why = last_log_line(socket.parent_path() / "crosvisord.log");
    return make_error(ErrorKind::unavailable, "crosvisord could not be started at " +
                                                  socket.string() +
                                                  (why.empty() ? std::string() : ": " + why));
  }
  if (say)
    say("started crosvisord at " + socket.string() +
        " (it serves your other terminals too, and exits when it has nothing left to supervise)");
  return client;
}

}  // namespace crosvisor::cli

namespace crosvisor::cli {

Expected<void> fill_default_binaries(DaemonClient& client,
                                     const std::vector<nlohmann::json*>& vms) {
  if (client.daemon_uid() != ::geteuid())
    return {};
  const bool any_unnamed = std::any_of(
      vms.begin(), vms.end(), [](const nlohmann::json* vm) { return !vm->contains("vmm_binary"); });
  if (!any_unnamed)
    return {};
  auto version = client.call(protocol::VersionRequest{});
  if (!version)
    return std::unexpected(version.error());
  const auto configured = version->value("vmm_binaries", nlohmann::json::object());
  for (nlohmann::json* vm : vms) {
    if (vm->contains("vmm_binary"))
      continue;
    const std::string kind = vm->value("vmm", std::string("qemu"));
    if (!configured.value(kind, std::string()).empty())
      continue;  // the daemon was told which binary to run
    // Not found here: the daemon tries its own PATH, and says so if it fails too.
    if (auto found =
            process::resolve_binary(kind == "crosvm" ? kDefaultCrosvmBinary : kDefaultQemuBinary))
      (*vm)["vmm_binary"] = found->string();
  }
  return {};
}

}  // namespace crosvisor::cli
