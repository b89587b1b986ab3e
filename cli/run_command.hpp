// `vm run FILE`: create a VM through crosvisord (the user's own, started on demand, when no other
// serves them), stay attached, return when it dies.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "crosvisor/vm_spec.hpp"
#include "crosvisor/vmm_binaries.hpp"

namespace crosvisor::cli {

struct RunOptions {
  std::filesystem::path file;
  std::optional<std::string> name;
  std::optional<DebugLevel> debug;
  std::optional<std::string> accel;
  bool console = false;  // print the console on stdout (debug = full VMs)
  // Hand the VM to crosvisord, which keeps it until `vm stop`; return once it is ready.
  bool detach = false;
  VmmBinaries vmm_binaries;
  std::optional<std::filesystem::path> socket;
  std::string log_level = "warn";
};

int run_vm(const RunOptions& options);

}  // namespace crosvisor::cli
