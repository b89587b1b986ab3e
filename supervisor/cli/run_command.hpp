// `vm run FILE`: boot one VM, stay attached, return when it dies.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "crosvisor/service.hpp"
#include "crosvisor/vm_spec.hpp"

namespace crosvisor::cli {

struct RunOptions {
  std::filesystem::path file;
  std::optional<std::string> name;
  std::optional<DebugLevel> debug;
  std::optional<std::string> accel;
  VmmBinaries vmm_binaries;
};

int run_vm(const RunOptions& options);

}  // namespace crosvisor::cli
