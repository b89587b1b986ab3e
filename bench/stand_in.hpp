// VMs for the crosvm stand-in (build/fake-crosvm, a TEST DOUBLE), shared by the scenarios that
// run many of them.
#pragma once

#include <fstream>
#include <string>

#include "bench/bench.hpp"
#include "crosvisor/vm_spec.hpp"

namespace crosvisor::bench {

inline constexpr const char* kReady = "fake-crosvm guest: ready";

// The stand-in only checks that its kernel is a non-empty regular file.
inline void prepare_stand_in(const Options& options) {
  std::filesystem::create_directories(options.work_dir);
  std::ofstream(options.work_dir / "kernel") << "not a kernel: the stand-in only checks the file";
}

inline VmSpec stand_in_spec(const std::string& prefix, int index, const Options& options) {
  VmSpec spec;
  spec.name = prefix + std::to_string(index);
  spec.vmm = VmmKind::crosvm;
  spec.vmm_binary = options.fake_crosvm;
  spec.kernel = options.work_dir / "kernel";
  spec.params = "console=ttyS0";
  spec.debug = DebugLevel::none;
  spec.ready = ConsoleReady{kReady};
  return spec;
}

}  // namespace crosvisor::bench
