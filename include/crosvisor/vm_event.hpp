// What subscribers of a VM hear: state changes (in order, ending with `dead` and its reason) and,
// for debuggable VMs, the console.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "crosvisor/vm_spec.hpp"
#include "crosvisor/vm_state.hpp"

namespace crosvisor {

struct VmEvent {
  std::string vm;
  VmState state = VmState::created;
  std::optional<DeathReason> reason;  // set when state == dead
  std::string detail;                 // pid when running; exit status and cause when dead
};

struct ConsoleLine {
  std::string vm;
  std::string text;
};

struct VmInfo {
  std::string name;
  VmState state = VmState::created;
  VmmKind vmm = VmmKind::qemu;
  DebugLevel debug = DebugLevel::none;
  pid_t pid = -1;
  std::uint32_t cid = 0;         // 0 until granted
  std::int64_t uptime_ms = 0;    // since the VMM started; 0 before
  std::optional<std::uint32_t> owner_uid;  // the VmSpec's owner
};

}  // namespace crosvisor
