#include "process/exit_status.hpp"

#include <string.h>

namespace crosvisor::process {

std::string ExitStatus::to_string() const {
  if (!observed)
    return "exit status unknown (not this supervisor's child)";
  if (!signaled)
    return "exit " + std::to_string(value);
  const char* name = sigdescr_np(value);
  return "signal " + std::to_string(value) + (name ? std::string(" (") + name + ")" : "");
}

}  // namespace crosvisor::process
