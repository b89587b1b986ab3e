#include "support/subprocess.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include <stdexcept>

#include "process/pidfd.hpp"

namespace crosvisor::test {

UniqueFd open_null() {
  return UniqueFd(::open("/dev/null", O_RDWR | O_CLOEXEC));
}

process::LaunchRequest sleeper_request() {
  process::LaunchRequest request;
  request.binary = "sleep";
  request.args = {"60"};
  request.fds.set(0, open_null());
  request.fds.set(1, open_null());
  request.fds.set(2, open_null());
  return request;
}

Subprocess::Subprocess(std::vector<std::string> argv, std::vector<std::string> environment) {
  process::LaunchRequest request;
  request.binary = argv.at(0);
  request.args.assign(argv.begin() + 1, argv.end());
  if (!environment.empty())
    request.environment = std::move(environment);
  int ends[2];
  if (pipe2(ends, O_CLOEXEC) != 0)
    throw std::runtime_error("pipe");
  output_fd_.reset(ends[0]);
  request.fds.set(0, UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC)));
  request.fds.set(1, UniqueFd(fcntl(ends[1], F_DUPFD_CLOEXEC, 3)));
  request.fds.set(2, UniqueFd(ends[1]));
  auto child = process::spawn_child(request);
  if (!child)
    throw std::runtime_error(child.error().message);
  pid_ = child->pid;
  pidfd_ = std::move(child->pidfd);
}

Subprocess::~Subprocess() {
  if (!exit_code_) {
    signal(SIGKILL);
    wait_exit(std::chrono::seconds(10));
  }
}

bool Subprocess::read_some(std::chrono::milliseconds timeout) {
  pollfd poller{output_fd_.get(), POLLIN, 0};
  if (poll(&poller, 1, static_cast<int>(timeout.count())) <= 0)
    return false;
  char buffer[4096];
  const ssize_t n = read(output_fd_.get(), buffer, sizeof(buffer));
  if (n <= 0)
    return false;
  output_.append(buffer, static_cast<std::size_t>(n));
  return true;
}

std::optional<std::string> Subprocess::wait_for_line(const std::string& text,
                                                     std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    // Look at every complete line not yet scanned.
    std::size_t end;
    while ((end = output_.find('\n', scanned_)) != std::string::npos) {
      std::string line = output_.substr(scanned_, end - scanned_);
      scanned_ = end + 1;
      if (line.find(text) != std::string::npos)
        return line;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !read_some(left))
      return std::nullopt;
  }
}

std::optional<int> Subprocess::wait_exit(std::chrono::milliseconds timeout) {
  if (exit_code_)
    return exit_code_;
  // Keep reading its output meanwhile: a child blocked on a full pipe would never exit.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    pollfd pollers[2] = {{pidfd_.get(), POLLIN, 0}, {output_fd_.get(), POLLIN, 0}};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return std::nullopt;
    if (poll(pollers, 2, static_cast<int>(left.count())) <= 0)
      return std::nullopt;
    if (pollers[0].revents & POLLIN)
      break;
    if (!read_some(std::chrono::milliseconds(0)))
      pollers[1].fd = -1;  // end of output; wait for the exit alone
    if (pollers[1].fd < 0) {
      pollfd exit_only{pidfd_.get(), POLLIN, 0};
      const auto rest = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (rest.count() <= 0 || poll(&exit_only, 1, static_cast<int>(rest.count())) <= 0)
        return std::nullopt;
      break;
    }
  }
  while (read_some(std::chrono::milliseconds(0))) {
  }
  siginfo_t info{};
  if (waitid(P_PIDFD, pidfd_.get(), &info, WEXITED) != 0)
    return std::nullopt;
  exit_code_ = info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status;
  return exit_code_;
}

void Subprocess::signal(int signo) {
  if (!exit_code_)
    pidfd_send_signal(pidfd_.get(), signo, nullptr, 0);
}

}  // namespace crosvisor::test
