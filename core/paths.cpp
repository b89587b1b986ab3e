#include "crosvisor/paths.hpp"

#include <unistd.h>

#include <cstdlib>
#include <string>

namespace crosvisor {

std::filesystem::path default_runtime_dir() {
  if (geteuid() == 0)
    return "/run/crosvisor";
  if (const char* runtime = std::getenv("XDG_RUNTIME_DIR"); runtime && *runtime) {
    return std::filesystem::path(runtime) / "crosvisor";
  }
  return std::filesystem::temp_directory_path() / ("crosvisor-" + std::to_string(geteuid()));
}

}  // namespace crosvisor
