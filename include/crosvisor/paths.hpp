// Where crosvisor keeps its runtime state by default.
#pragma once

#include <filesystem>

namespace crosvisor {

// $XDG_RUNTIME_DIR/crosvisor for users, /run/crosvisor for root.
std::filesystem::path default_runtime_dir();

}  // namespace crosvisor
