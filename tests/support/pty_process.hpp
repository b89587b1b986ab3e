// A program under test on a terminal of its own (a pseudo-terminal whose master end the test
// holds): what it prints is read from the terminal, what the test types goes to it, and the
// terminal's modes can be looked at while it runs and after it exits.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "core/unique_fd.hpp"

namespace crosvisor::test {

class PtyProcess {
 public:
  PtyProcess(const std::vector<std::string>& argv, const std::vector<std::string>& environment);
  ~PtyProcess();  // SIGKILLs and reaps a child still running

  pid_t pid() const { return pid_; }
  // Reads until everything printed since the last wait contains `text`; false at the deadline.
  bool wait_for(const std::string& text, std::chrono::milliseconds timeout);
  // As if typed on the terminal.
  void type(const std::string& keys);
  // Whether the terminal is in raw mode (no line editing, no echo) right now.
  bool raw_mode() const;
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  void signal(int signo);
  const std::string& output() const { return output_; }

 private:
  bool read_some(std::chrono::milliseconds timeout);

  pid_t pid_ = -1;
  UniqueFd master_;
  std::string output_;
  std::size_t scanned_ = 0;
  std::optional<int> exit_code_;
};

}  // namespace crosvisor::test
