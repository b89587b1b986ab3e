// The benchmark harness: each scenario measures crosvisor against a baseline taken in the same run
// and prints its figures; docs/performance.md records them.
#pragma once

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

namespace crosvisor::bench {

struct Options {
  std::filesystem::path work_dir;     // scratch space, removed afterwards
  bool quick = false;                 // fewer repetitions (CI smoke runs)
  int vms = 1000;                     // VMs in the scale scenario
  std::filesystem::path fake_crosvm;  // the crosvm stand-in (default: beside this binary)
  std::filesystem::path guest_dir;    // the test guest (guest/build; default: beside this binary)
  // The soak (bench/soak_bench.cpp).
  int trials = 0;                       // 0: 1000, or 14 with quick
  std::vector<std::string> soak_kinds;  // empty: every kind, in turn
  unsigned seed = 0;                    // 0: a random one (printed)
  std::filesystem::path evidence_dir;   // what failing trials left (default: in /tmp)
};

// The middle of `values` (the upper middle of an even count): what a scenario reports of its
// rounds.
inline double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

int composite_scenario(const Options& options);
int cid_scenario(const Options& options);
int scale_scenario(const Options& options);
int cascade_scenario(const Options& options);
int fleet_scenario(const Options& options);
int control_scenario(const Options& options);
int lifecycles_scenario(const Options& options);
int boot_scenario(const Options& options);
int net_scenario(const Options& options);
int store_scenario(const Options& options);
int cluster_scenario(const Options& options);
int confine_scenario(const Options& options);
int soak_scenario(const Options& options);
int console_scenario(const Options& options);
int idle_scenario(const Options& options);
int list_scenario(const Options& options);
int real_fleet_scenario(const Options& options);

}  // namespace crosvisor::bench
