// A program under test, run as a real child with its stdout and stderr captured together.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "process/launch.hpp"

namespace crosvisor::test {

// /dev/null, read-write and close-on-exec: a planned fd that is nothing in particular.
UniqueFd open_null();
// `sleep 60` with /dev/null as its standard streams: a child to start, look at and kill.
process::LaunchRequest sleeper_request();

class Subprocess {
 public:
  explicit Subprocess(std::vector<std::string> argv, std::vector<std::string> environment = {});
  ~Subprocess();  // SIGKILLs and reaps a child still running

  pid_t pid() const { return pid_; }
  // Reads output until a line contains `text`; returns that line, or nothing at the deadline/EOF.
  std::optional<std::string> wait_for_line(const std::string& text,
                                           std::chrono::milliseconds timeout);
  // Waits for the exit and returns the exit code (128 + signal when killed); nothing on timeout.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  void signal(int signo);
  // Everything read so far.
  const std::string& output() const { return output_; }

 private:
  bool read_some(std::chrono::milliseconds timeout);

  pid_t pid_ = -1;
  UniqueFd pidfd_;
  UniqueFd output_fd_;
  std::string output_;
  std::size_t scanned_ = 0;
  std::optional<int> exit_code_;
};

}  // namespace crosvisor::test
