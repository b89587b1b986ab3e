// Exit codes of `vm` and `crosvisord`, one table for both (docs/cli.md): a script can tell why a
// command failed, or why its VM ended, without parsing text.
#pragma once

#include "crosvisor/error.hpp"
#include "crosvisor/vm_state.hpp"

namespace crosvisor {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRefused = 1;        // the request does not fit the VM's state
inline constexpr int kExitUsage = 2;          // bad command line
inline constexpr int kExitConfig = 3;         // a VM or fleet file is wrong or unreadable
inline constexpr int kExitSupervisor = 4;     // crosvisord cannot be reached or failed
inline constexpr int kExitNotFound = 5;       // no such VM, fleet or file (of yours)
inline constexpr int kExitConflict = 6;       // a name, CID, fleet or socket is already taken
inline constexpr int kExitPermission = 7;     // not allowed for this user
inline constexpr int kExitLimit = 8;          // a configured limit was reached
inline constexpr int kExitImage = 9;          // an image cannot be used as given
inline constexpr int kExitInterrupted = 128;  // + the signal (130 for Ctrl-C)

// The exit code of a command that failed with an error of `kind`.
constexpr int exit_code_for(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::invalid_config:
      return kExitConfig;
    case ErrorKind::invalid_image:
      return kExitImage;
    case ErrorKind::not_found:
      return kExitNotFound;
    case ErrorKind::conflict:
      return kExitConflict;
    case ErrorKind::permission:
      return kExitPermission;
    case ErrorKind::limit:
      return kExitLimit;
    case ErrorKind::state:
      return kExitRefused;
    case ErrorKind::interrupted:
      return kExitInterrupted + 2;  // SIGINT; callers that know the signal add it themselves
    case ErrorKind::io:
    case ErrorKind::launch:
    case ErrorKind::protocol:
    case ErrorKind::unavailable:
      return kExitSupervisor;
  }
  return kExitSupervisor;
}

// 0 for a clean power-off; 10 and up for every other death reason.
constexpr int exit_code_for(DeathReason reason) {
  switch (reason) {
    case DeathReason::shutdown:
      return 0;
    case DeathReason::start_failed:
      return 10;
    case DeathReason::reboot:
      return 11;
    case DeathReason::crash:
      return 12;
    case DeathReason::guest_panic:
      return 13;
    case DeathReason::watchdog_reboot:
      return 14;
    case DeathReason::killed:
      return 15;
    case DeathReason::error:
      return 16;
    case DeathReason::unknown:
      return 17;
    case DeathReason::hangup:
      return 18;
    case DeathReason::out_of_memory:
      return 19;
  }
  return 17;
}

}  // namespace crosvisor
