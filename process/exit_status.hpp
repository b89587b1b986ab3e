// How a reaped child ended: an exit code or a signal, as waitid() reports it.
#pragma once

#include <string>

namespace crosvisor::process {

struct ExitStatus {
  bool signaled = false;
  int value = 0;  // the exit code, or the signal number when `signaled`
  // False for a process that was not our child (a VMM taken over from an earlier supervisor):
  // it was seen to end, but only its parent could learn how.
  bool observed = true;
  // SIGKILLed by the kernel's OOM killer at its cgroup's memory limit (its cgroup counted the
  // kill), not by anyone's kill().
  bool oom_killed = false;

  static ExitStatus exited(int code) { return {false, code}; }
  static ExitStatus killed_by(int signo) { return {true, signo}; }
  static ExitStatus unobserved() { return {false, -1, false, false}; }
  std::string to_string() const;  // "exit 0", "signal 9 (Killed)"
  friend bool operator==(const ExitStatus&, const ExitStatus&) = default;
};

}  // namespace crosvisor::process
