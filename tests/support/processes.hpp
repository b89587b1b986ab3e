// Looking at processes and fds from the outside, as an operator would with ps and ls /proc.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <set>
#include <string>
#include <vector>

namespace crosvisor::test {

// The fd numbers open in process `pid` (from /proc/<pid>/fd).
std::set<int> open_fds(pid_t pid);
// "N -> target" per open fd of `pid`, one per line, for failure messages.
std::string describe_fds(pid_t pid);
// True while `pid` exists and is not a zombie.
bool process_alive(pid_t pid);
// Pids of live processes whose command line contains `needle`.
std::vector<pid_t> processes_with_cmdline(const std::string& needle);
// Pids of every child of `parent`, zombies included (from the PPid of /proc/<pid>/status).
std::vector<pid_t> children_of(pid_t parent);
// Polls `condition` every `interval` until it holds or `timeout` passes; returns the last result.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
                std::chrono::milliseconds interval = std::chrono::milliseconds(20));

}  // namespace crosvisor::test

namespace crosvisor::test {

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs a shell command line (a test's own, never user input) and collects its output.
CommandResult run_command(const std::string& command_line);

}  // namespace crosvisor::test
