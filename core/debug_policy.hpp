// What a VM's debug level allows, decided here and nowhere else (AVF: FULL is for development,
// NONE for production). A FULL VM keeps its console (logs), takes input on it, leaves memory
// dumps and may have a gdb stub; a NONE VM has none of them.
#pragma once

#include <optional>

#include "crosvisor/error.hpp"
#include "crosvisor/vm_spec.hpp"

namespace crosvisor {

enum class DebugFeature {
  console_log,  // the console kept in memory and in a file (vm logs)
  console,      // input to the guest's console (vm console)
  dump,         // memory dumps, on a panic or on demand (vm dump)
  gdb,          // a gdb stub (gdb_port)
};

// Nothing when `spec`'s debug level allows `feature`; otherwise the refusal (ErrorKind::state),
// naming the VM and what it lacks.
std::optional<Error> debug_refusal(const VmSpec& spec, DebugFeature feature);

// Nothing when `spec`'s VMM can give `feature` safely; otherwise why not (ErrorKind::state).
// crosvm has no memory dump on demand, and its gdb stub listens on every interface.
std::optional<Error> vmm_refusal(const VmSpec& spec, DebugFeature feature);

// Whether a panicking guest is kept paused for a memory dump before it dies: debuggable QEMU
// VMs (crosvm cannot dump).
inline bool dumps_on_panic(const VmSpec& spec) {
  return !debug_refusal(spec, DebugFeature::dump) && !vmm_refusal(spec, DebugFeature::dump);
}

// What a VM file says when a key needs debug = "full".
inline constexpr const char* kNeedsFullDebug =
    "needs debug = \"full\" (debug = \"none\" is for production VMs: no console, dumps or "
    "debugger)";

}  // namespace crosvisor
