#include "core/debug_policy.hpp"

namespace crosvisor {
namespace {

const char* what_it_lacks(DebugFeature feature) {
  switch (feature) {
    case DebugFeature::console_log:
      return "its console is not kept";
    case DebugFeature::console:
      return "its console takes no input";
    case DebugFeature::dump:
      return "its memory is never dumped";
    case DebugFeature::gdb:
      return "it has no gdb stub";
  }
  return "not allowed";
}

}  // namespace

std::optional<Error> debug_refusal(const VmSpec& spec, DebugFeature feature) {
  if (spec.debug == DebugLevel::full)
    return std::nullopt;
  return Error{ErrorKind::state,
               "VM '" + spec.name + "' runs with debug = \"none\": " + what_it_lacks(feature)};
}

std::optional<Error> vmm_refusal(const VmSpec& spec, DebugFeature feature) {
  if (spec.vmm != VmmKind::crosvm)
    return std::nullopt;
  switch (feature) {
    case DebugFeature::gdb:
      return Error{ErrorKind::state,
                   "crosvm's gdb stub listens on every interface (0.0.0.0: src/crosvm/gdb.rs), "
                   "which would offer the guest's memory and registers to anyone who can reach "
                   "this host; crosvisor does not start it: debug this guest with vmm = \"qemu\""};
    case DebugFeature::dump:
      return Error{ErrorKind::state,
                   "crosvm cannot dump a guest's memory (it has no such command; AVF gets "
                   "ramdumps from a crash kernel inside the guest instead: docs/debugging.md)"};
    case DebugFeature::console_log:
    case DebugFeature::console:
      break;
  }
  return std::nullopt;
}

}  // namespace crosvisor
