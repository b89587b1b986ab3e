#include "supervisor/cli/daemon_client.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "daemon/control_socket.hpp"
#include "protocol/fd_passing.hpp"
#include "supervisor/launch.hpp"

namespace crosvisor::cli {

std::filesystem::path choose_socket(const std::optional<std::filesystem::path>& option) {
  if (option)
    return *option;
  if (const char* from_env = std::getenv("CROSVISOR_SOCKET"); from_env && *from_env)
    return from_env;
  return daemon::default_control_socket();
}

Expected<DaemonClient> DaemonClient::connect(const std::filesystem::path& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.native().size() >= sizeof(address.sun_path))
    return make_error(ErrorKind::io, path.string() + ": socket path too long");
  std::memcpy(address.sun_path, path.c_str(), path.native().size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd)
    return std::unexpected(errno_error(ErrorKind::io, "socket", errno));
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    const int saved = errno;
    const auto kind =
        saved == ENOENT || saved == ECONNREFUSED ? ErrorKind::not_found : ErrorKind::io;
    return std::unexpected(errno_error(kind, "no crosvisord at " + path.string(), saved));
  }
  return DaemonClient(std::move(fd));
}

Expected<std::uint64_t> DaemonClient::send(nlohmann::json request,
                                           const std::vector<UniqueFd>& fds) {
  const std::uint64_t id = next_id_++;
  request["id"] = id;
  const std::string frame = protocol::encode_frame(protocol::dump(request));
  std::vector<int> numbers;
  for (const auto& fd : fds)
    numbers.push_back(fd.get());
  std::size_t sent = 0;
  while (sent < frame.size()) {
    // The fds ride with the frame's first byte.
    auto n = protocol::send_with_fds(socket_.get(), std::string_view(frame).substr(sent),
                                     sent == 0 ? numbers : std::vector<int>{});
    if (!n)
      return make_error(ErrorKind::io, "send to crosvisord: " + n.error().message);
    sent += *n;
  }
  return id;
}

Expected<std::optional<nlohmann::json>> DaemonClient::next(int timeout_ms) {
  for (;;) {
    auto frame = decoder_.next();
    if (!frame)
      return std::unexpected(frame.error());
    if (frame->has_value()) {
      auto message = nlohmann::json::parse(**frame, nullptr, false);
      if (message.is_discarded() || !message.is_object())
        return make_error(ErrorKind::protocol, "crosvisord sent something that is not JSON");
      return std::optional<nlohmann::json>(std::move(message));
    }
    pollfd wait{socket_.get(), POLLIN, 0};
    const int ready = ::poll(&wait, 1, timeout_ms);
    if (ready < 0 && errno == EINTR)
      continue;
    if (ready == 0)
      return std::optional<nlohmann::json>();
    std::array<char, 65536> buffer;
    const ssize_t n = ::recv(socket_.get(), buffer.data(), buffer.size(), 0);
    if (n == 0)
      return make_error(ErrorKind::io, "crosvisord closed the connection");
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return std::unexpected(errno_error(ErrorKind::io, "read from crosvisord", errno));
    }
    decoder_.feed(std::string_view(buffer.data(), static_cast<std::size_t>(n)));
  }
}

Expected<nlohmann::json> DaemonClient::call(
    nlohmann::json request, const std::function<void(const nlohmann::json&)>& on_event,
    const std::vector<UniqueFd>& fds) {
  auto id = send(std::move(request), fds);
  if (!id)
    return std::unexpected(id.error());
  for (;;) {
    auto message = next();
    if (!message)
      return std::unexpected(message.error());
    const auto& json = **message;
    if (json.contains("event")) {
      if (on_event)
        on_event(json);
      continue;
    }
    if (!json.contains("id") || json["id"] != *id) {
      if (json.value("ok", true) == false)  // a refusal of the stream itself
        return make_error(ErrorKind::protocol, json.value("error", std::string("refused")));
      continue;
    }
    if (!json.value("ok", false))
      return make_error(ErrorKind::protocol, json.value("error", std::string("refused")));
    return json;
  }
}

Expected<PrivateSupervisor> start_private_supervisor(const std::vector<std::string>& extra_args,
                                                     const std::string& log_level) {
  auto dir = make_private_runtime_dir();
  if (!dir)
    return std::unexpected(dir.error());
  // The runtime dir's owner lock is this process's; the supervisor gets its own dir under it.
  const auto socket = dir->path / "control.sock";
  LaunchRequest request;
  const auto beside_us =
      std::filesystem::read_symlink("/proc/self/exe").parent_path() / "crosvisord";
  request.binary = std::filesystem::exists(beside_us) ? beside_us : "crosvisord";
  request.args = {"--private",        "--socket",    socket.string(), "--runtime-dir",
                  dir->path.string(), "--log-level", log_level};
  request.args.insert(request.args.end(), extra_args.begin(), extra_args.end());
  // A supervisor holds several fds per VM: give it all this process may have.
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  request.max_open_files = limit.rlim_max;
  UniqueFd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
  request.fds.set(0, std::move(null));
  request.fds.set(1, UniqueFd(fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3)));
  request.fds.set(2, UniqueFd(fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3)));
  auto child = spawn_child(request);
  if (!child)
    return std::unexpected(child.error());
  for (int attempt = 0; attempt < 500; ++attempt) {
    if (DaemonClient::connect(socket))
      return PrivateSupervisor{child->pid, std::move(child->pidfd), socket, std::move(*dir)};
    siginfo_t info{};
    if (waitid(P_PIDFD, static_cast<id_t>(child->pidfd.get()), &info, WEXITED | WNOHANG) == 0 &&
        info.si_pid != 0) {
      return make_error(ErrorKind::launch, "the private crosvisord exited at once (status " +
                                               std::to_string(info.si_status) + ")");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return make_error(ErrorKind::launch, "the private crosvisord did not open " + socket.string());
}

void finish_private_supervisor(PrivateSupervisor& supervisor) {
  siginfo_t info{};
  waitid(P_PIDFD, static_cast<id_t>(supervisor.pidfd.get()), &info, WEXITED);
  std::error_code ignored;
  std::filesystem::remove_all(supervisor.dir.path, ignored);
}

}  // namespace crosvisor::cli
