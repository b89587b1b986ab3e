// Names of the public enums, as they appear in CLI output, logs and JSON.
#include <algorithm>

#include "crosvisor/vm_spec.hpp"
#include "crosvisor/vm_state.hpp"

namespace crosvisor {

std::string_view to_string(VmmKind kind) {
  switch (kind) {
    case VmmKind::qemu:
      return "qemu";
    case VmmKind::crosvm:
      return "crosvm";
  }
  return "?";
}

std::string_view to_string(DebugLevel level) {
  switch (level) {
    case DebugLevel::none:
      return "none";
    case DebugLevel::full:
      return "full";
  }
  return "?";
}

std::string_view to_string(VmState state) {
  switch (state) {
    case VmState::created:
      return "created";
    case VmState::starting:
      return "starting";
    case VmState::running:
      return "running";
    case VmState::ready:
      return "ready";
    case VmState::stopping:
      return "stopping";
    case VmState::dead:
      return "dead";
  }
  return "?";
}

std::string_view to_string(DeathReason reason) {
  switch (reason) {
    case DeathReason::shutdown:
      return "SHUTDOWN";
    case DeathReason::start_failed:
      return "START_FAILED";
    case DeathReason::reboot:
      return "REBOOT";
    case DeathReason::crash:
      return "CRASH";
    case DeathReason::guest_panic:
      return "GUEST_PANIC";
    case DeathReason::watchdog_reboot:
      return "WATCHDOG_REBOOT";
    case DeathReason::killed:
      return "KILLED";
    case DeathReason::error:
      return "ERROR";
    case DeathReason::unknown:
      return "UNKNOWN";
  }
  return "?";
}

bool is_valid_vm_name(std::string_view name) {
  if (name.empty() || name.size() > 64)
    return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    if (!ok)
      return false;
  }
  const bool all_digits =
      std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; });
  return name.front() != '.' && name.front() != '-' && !all_digits;
}

}  // namespace crosvisor
