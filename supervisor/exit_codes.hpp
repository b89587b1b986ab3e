// Exit codes of the `vm` command: a script can tell why its VM ended without parsing text.
#pragma once

#include "crosvisor/vm_state.hpp"

namespace crosvisor {

inline constexpr int kExitUsage = 2;       // bad command line
inline constexpr int kExitConfig = 3;      // the VM file is wrong or unreadable
inline constexpr int kExitSupervisor = 4;  // the supervisor itself failed

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
  }
  return 17;
}

}  // namespace crosvisor
