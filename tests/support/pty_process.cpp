#include "support/pty_process.hpp"

#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <stdexcept>
#include <thread>

namespace crosvisor::test {

PtyProcess::PtyProcess(const std::vector<std::string>& argv,
                       const std::vector<std::string>& environment) {
  std::vector<char*> args;
  for (const auto& arg : argv)
    args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  std::vector<char*> env;
  for (const auto& entry : environment)
    env.push_back(const_cast<char*>(entry.c_str()));
  env.push_back(nullptr);
  int master = -1;
  pid_ = ::forkpty(&master, nullptr, nullptr, nullptr);
  if (pid_ < 0)
    throw std::runtime_error("forkpty");
  if (pid_ == 0) {
    ::execve(args[0], args.data(), env.data());
    ::_exit(127);
  }
  master_.reset(master);
}

PtyProcess::~PtyProcess() {
  if (!exit_code_) {
    signal(SIGKILL);
    wait_exit(std::chrono::seconds(10));
  }
}

bool PtyProcess::read_some(std::chrono::milliseconds timeout) {
  pollfd poller{master_.get(), POLLIN, 0};
  if (::poll(&poller, 1, static_cast<int>(timeout.count())) <= 0)
    return false;
  char buffer[4096];
  const ssize_t n = ::read(master_.get(), buffer, sizeof(buffer));
  if (n <= 0)
    return false;  // EIO once the child and its terminal are gone
  output_.append(buffer, static_cast<std::size_t>(n));
  return true;
}

bool PtyProcess::wait_for(const std::string& text, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto found = output_.find(text, scanned_);
    if (found != std::string::npos) {
      scanned_ = found + text.size();
      return true;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return false;
    if (!read_some(left) && exit_code_)
      return false;
  }
}

void PtyProcess::type(const std::string& keys) {
  std::size_t written = 0;
  while (written < keys.size()) {
    const ssize_t n = ::write(master_.get(), keys.data() + written, keys.size() - written);
    if (n <= 0)
      return;
    written += static_cast<std::size_t>(n);
  }
}

bool PtyProcess::raw_mode() const {
  termios modes{};
  if (::tcgetattr(master_.get(), &modes) != 0)
    return false;
  return (modes.c_lflag & (ICANON | ECHO)) == 0;
}

std::optional<int> PtyProcess::wait_exit(std::chrono::milliseconds timeout) {
  if (exit_code_)
    return exit_code_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t done = ::waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      while (read_some(std::chrono::milliseconds(0))) {
      }
      return exit_code_;
    }
    if (std::chrono::steady_clock::now() >= deadline)
      return std::nullopt;
    // Keep reading: a child blocked on a full terminal would never exit.
    if (!read_some(std::chrono::milliseconds(50)))
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void PtyProcess::signal(int signo) {
  if (!exit_code_)
    ::kill(pid_, signo);
}

}  // namespace crosvisor::test
