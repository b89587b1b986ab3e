// How a reaped child ended: an exit code or a signal, as waitid() reports it.
#pragma once

#include <string>

namespace crosvisor::process {

struct ExitStatus {
  bool signaled = false;
  int value = 0;  // the exit code, or the signal number when `signaled`

  static ExitStatus exited(int code) { return {false, code}; }
  static ExitStatus killed_by(int signo) { return {true, signo}; }
  std::string to_string() const;  // "exit 0", "signal 9 (Killed)"
  friend bool operator==(const ExitStatus&, const ExitStatus&) = default;
};

}  // namespace crosvisor::process
