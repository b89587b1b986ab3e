// VMs for the crosvm stand-in (build/fake-crosvm, a TEST DOUBLE), shared by the scenarios that
// run many of them.
#pragma once

#include <malloc.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>

#include "bench/bench.hpp"
#include "crosvisor/service.hpp"
#include "crosvisor/vm_spec.hpp"
#include "vmm/reactor.hpp"

namespace crosvisor::bench {

inline constexpr const char* kReady = "fake-crosvm guest: ready";

// The options of a stand-in scenario (fewer VMs when quick), with its kernel file written: the
// stand-in only checks that its kernel is a non-empty regular file.
inline Options prepare_stand_in(const Options& given) {
  Options options = given;
  if (options.quick)
    options.vms = std::min(options.vms, 100);
  std::filesystem::create_directories(options.work_dir);
  std::ofstream(options.work_dir / "kernel") << "not a kernel: the stand-in only checks the file";
  return options;
}

// Quiet logs while a scenario runs: a few lines per VM would dominate what is measured.
class QuietLogs {
 public:
  QuietLogs() : level_(spdlog::get_level()) { spdlog::set_level(spdlog::level::warn); }
  ~QuietLogs() { spdlog::set_level(level_); }
  QuietLogs(const QuietLogs&) = delete;
  QuietLogs& operator=(const QuietLogs&) = delete;

 private:
  spdlog::level::level_enum level_;
};

// Heap bytes in use (malloc'd and not freed), in KiB: what the supervisor holds, whatever the
// allocator kept from earlier rounds.
inline double heap_in_use_kib() {
  const struct mallinfo2 info = mallinfo2();
  return static_cast<double>(info.uordblks + info.hblkhd) / 1024.0;
}

// A service for `options.vms` stand-in VMs: runtime files under work_dir/tag, CID locks and a
// CID range of its own; VMMs started through this program as their spawner, as crosvisord does
// (unless `spawner` is false: by the supervisor itself).
inline ServiceOptions stand_in_service_options(const Options& options, const std::string& tag,
                                               bool spawner = true) {
  auto service_options = make_service_options(
      options.work_dir / tag,
      std::make_shared<vmm::Reactor>(spawner ? "/proc/self/exe" : std::filesystem::path()));
  service_options.cid_scope = "crosvisor-bench-" + std::to_string(getpid());
  service_options.cid_last = service_options.cid_first + 4 * static_cast<unsigned>(options.vms);
  return service_options;
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
