#include "process/spawner.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "process/fd_passing.hpp"
#include "process/pidfd.hpp"
#include "process/spawner_wire.hpp"

namespace crosvisor::process {
namespace {

constexpr int kChannel = 3;
// A launch request's largest message: a VMM's arguments, environment and sandbox paths fit many
// times over; the socket's default send buffer (212 992 bytes) holds it.
constexpr std::size_t kMaxRequest = 192 * 1024;

// One launch, in the spawner: its answer and the new child's pidfd.
std::pair<spawner_wire::Answer, UniqueFd> launch(const Received& received,
                                                 std::span<const char> bytes, pid_t supervisor,
                                                 std::vector<UniqueFd> fds) {
  spawner_wire::Answer answer;
  if (received.truncated) {
    answer.error = Error{ErrorKind::limit, "spawner: the launch request is larger than " +
                                               std::to_string(kMaxRequest) + " bytes"};
    return {std::move(answer), UniqueFd()};
  }
  auto decoded = spawner_wire::decode(std::string_view(bytes.data(), bytes.size()), std::move(fds));
  if (!decoded) {
    answer.error = decoded.error();
    return {std::move(answer), UniqueFd()};
  }
  auto child = spawn_child(decoded->request, Lineage{supervisor, true}, answer.unreaped);
  if (!child) {
    answer.error = child.error();
    return {std::move(answer), UniqueFd()};
  }
  answer.pid = child->pid;
  return {std::move(answer), std::move(child->pidfd)};
}

int serve(int channel) {
  int type = 0;
  socklen_t size = sizeof(type);
  if (::getsockopt(channel, SOL_SOCKET, SO_TYPE, &type, &size) != 0 || type != SOCK_SEQPACKET) {
    std::fprintf(stderr, "%s: a VMM spawner is started by its supervisor, not by hand\n",
                 std::string(kSpawnerFlag).c_str());
    return 2;
  }
  ::prctl(PR_SET_NAME, "crosvisor-spawn");
  const pid_t supervisor = ::getppid();
  std::vector<char> buffer(kMaxRequest);
  for (;;) {
    auto received = receive_with_fds(channel, buffer);
    if (!received) {
      std::fprintf(stderr, "crosvisor spawner: %s\n", received.error().message.c_str());
      return 1;
    }
    if (received->bytes == 0)
      return 0;  // the supervisor closed the channel: it is done with us
    auto [answer, pidfd] = launch(*received, std::span(buffer.data(), received->bytes), supervisor,
                                  std::move(received->fds));
    const std::array<int, 1> attached{pidfd.get()};
    if (!send_with_fds(channel, spawner_wire::encode(answer),
                       pidfd ? std::span<const int>(attached) : std::span<const int>()))
      return 1;
  }
}

}  // namespace

void serve_if_spawner(int argc, char** argv) {
  if (argc == 2 && std::string_view(argv[1]) == kSpawnerFlag)
    ::_exit(serve(kChannel));
}

Expected<Spawner> Spawner::start(const std::filesystem::path& program) {
  int ends[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends) != 0)
    return std::unexpected(errno_error(ErrorKind::io, "spawner: socketpair", errno));
  UniqueFd ours(ends[0]);
  // Room for the largest request in one message, whatever the host's default.
  const int room = static_cast<int>(kMaxRequest + 4096);
  ::setsockopt(ours.get(), SOL_SOCKET, SO_SNDBUF, &room, sizeof(room));
  LaunchRequest request;
  request.binary = program;
  request.args = {std::string(kSpawnerFlag)};
  request.fds.set(0, UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC)));
  // Its complaints, if any, where the supervisor's go.
  request.fds.set(1, UniqueFd(::fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 0)));
  request.fds.set(2, UniqueFd(::fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 0)));
  request.fds.set(kChannel, UniqueFd(ends[1]));
  // It is the supervisor's own program: a sanitized build's options reach it too (a report of
  // the spawner's goes where the supervisor's go, not only to stderr).
  for (const char* name : {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS"}) {
    if (const char* value = std::getenv(name))
      request.environment.push_back(std::string(name) + "=" + value);
  }
  // As many fds as the supervisor may have: a VMM's limit is computed against the spawner's.
  if (rlimit own{}; ::getrlimit(RLIMIT_NOFILE, &own) == 0)
    request.max_open_files = own.rlim_max;
  for (const auto& entry : request.fds.entries()) {
    if (!entry.source)
      return std::unexpected(errno_error(ErrorKind::io, "spawner: its standard streams", errno));
  }
  auto helper = spawn_child(request);
  if (!helper)
    return std::unexpected(Error{helper.error().kind, "spawner: " + helper.error().message});
  return Spawner(std::move(*helper), std::move(ours));
}

Spawner::~Spawner() {
  if (helper_.pid <= 0)
    return;  // moved from
  // It ends on end-of-file; one that does not within a second (stuck in a launch) is killed.
  channel_.reset();
  pollfd ended{helper_.pidfd.get(), POLLIN, 0};
  if (::poll(&ended, 1, 1000) == 0)
    ::pidfd_send_signal(helper_.pidfd.get(), SIGKILL, nullptr, 0);
  reap_child(helper_.pid);
}

bool Spawner::alive() const {
  pollfd ended{helper_.pidfd.get(), POLLIN, 0};
  return !broken_ && ::poll(&ended, 1, 0) == 0;
}

Expected<SpawnedChild> Spawner::spawn(const LaunchRequest& request) {
  undelivered_ = false;
  auto binary = resolve_binary(request.binary);
  if (!binary)
    return std::unexpected(binary.error());
  const auto encoded = spawner_wire::encode(request, *binary);
  if (encoded.bytes.size() > kMaxRequest)
    return make_error(ErrorKind::limit, binary->string() + ": a launch request of " +
                                            std::to_string(encoded.bytes.size()) +
                                            " bytes, more than the spawner takes");
  if (encoded.fds.size() > kMaxFdsPerMessage)
    return make_error(ErrorKind::limit, binary->string() + ": " +
                                            std::to_string(encoded.fds.size()) +
                                            " fds, more than one launch may pass");
  if (auto sent = send_with_fds(channel_.get(), encoded.bytes, encoded.fds); !sent) {
    // Only a closed channel means the spawner is gone; anything else (a bad fd of the
    // request's) is this launch's own failure.
    const int why = errno;
    const bool gone = why == EPIPE || why == ECONNRESET || why == ENOTCONN;
    broken_ = broken_ || gone;
    undelivered_ = gone;
    return make_error(ErrorKind::launch, binary->string() + ": the spawner" +
                                             (gone ? " is gone (" : " (") + sent.error().message +
                                             ")");
  }

  std::array<char, 64 * 1024> buffer;
  auto received = receive_with_fds(channel_.get(), buffer);
  if (!received || received->bytes == 0) {
    broken_ = true;
    return make_error(ErrorKind::launch,
                      binary->string() + ": the spawner ended during the launch");
  }
  auto answer = spawner_wire::decode_answer(std::string_view(buffer.data(), received->bytes));
  if (!answer || received->truncated) {
    broken_ = true;  // what it says can no longer be trusted; a child it made is a stray
    return make_error(ErrorKind::protocol, "spawner: a malformed answer");
  }
  if (answer->unreaped > 0)
    reap_child(answer->unreaped);
  if (answer->error)
    return std::unexpected(*answer->error);
  if (received->fds.size() != 1 || answer->pid <= 0) {
    // A child without its pidfd cannot be watched: ended rather than left running.
    if (answer->pid > 0) {
      ::kill(answer->pid, SIGKILL);
      reap_child(answer->pid);
    }
    return make_error(ErrorKind::protocol, "spawner: no pidfd came with the child");
  }
  return SpawnedChild{answer->pid, std::move(received->fds.front())};
}

std::vector<pid_t> stray_children(const std::vector<pid_t>& known) {
  std::ifstream listed("/proc/self/task/" + std::to_string(::gettid()) + "/children");
  std::vector<pid_t> strays;
  pid_t pid = 0;
  while (listed >> pid) {
    if (std::find(known.begin(), known.end(), pid) == known.end())
      strays.push_back(pid);
  }
  return strays;
}

}  // namespace crosvisor::process
