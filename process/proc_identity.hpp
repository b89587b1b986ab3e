// Telling one process from another across a supervisor's restart. A pid alone names whatever
// process has it now; with the process's start time (clock ticks after boot) and its arguments,
// it names one process of one boot, which is what a VMM taken over must be.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/unique_fd.hpp"
#include "crosvisor/error.hpp"

namespace crosvisor::process {

struct ProcessIdentity {
  pid_t pid = -1;
  std::uint64_t start_time = 0;   // /proc/PID/stat field 22
  std::vector<std::string> args;  // argv after argv[0], as /proc/PID/cmdline has it
};

// This boot of the host (/proc/sys/kernel/random/boot_id); empty when it cannot be read.
std::string boot_id();
// not_found when no process has the pid.
Expected<std::uint64_t> process_start_time(pid_t pid);
Expected<std::vector<std::string>> process_args(pid_t pid);
Expected<ProcessIdentity> identify(pid_t pid);

// A pidfd for the process `expected` describes, if it still runs: same pid, start time and
// arguments; else not_found, saying which differs. The pidfd is opened first and the process
// checked after, so that the fd cannot end up naming a process that took the pid meanwhile.
Expected<UniqueFd> open_same_process(const ProcessIdentity& expected);

}  // namespace crosvisor::process
