// What confining VMMs costs (docs/sandbox.md): the same fleet of crosvm stand-ins brought up
// through crosvisord with --confine off (the baseline: vfork, the daemon's own uid and
// namespaces) and confined (clone3 into new mount, pid, IPC, UTS and network namespaces, a root
// of its own, another uid), rounds alternated so that neither side always runs on a warmer
// machine. Both run as root, each VMM in its cgroup where the host gives cgroups.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "bench/bench.hpp"
#include "bench/daemon_child.hpp"

namespace crosvisor::bench {
namespace {

using Clock = std::chrono::steady_clock;

// Seconds from `vm fleet up` to its return (every VM up), under `confine`.
double fleet_up(const Options& options, const std::filesystem::path& file, const std::string& dir,
                const std::string& confine) {
  const auto home = options.work_dir / dir;
  std::filesystem::create_directories(home);
  auto args = daemon_args(options, home);
  args.insert(args.end(), {"--confine", confine});
  Child daemon(beside("crosvisord"), args, home / "log");
  seconds_until([&] { return std::filesystem::exists(home / "control.sock"); },
                std::chrono::seconds(10));
  const auto start = Clock::now();
  vm(home / "control.sock", "fleet up " + file.string());
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  vm(home / "control.sock", "fleet down many --force");
  return seconds;
}

}  // namespace

int confine_scenario(const Options& options) {
  if (::geteuid() != 0)
    throw std::runtime_error("confine: confining VMMs needs root");
  const int vms = options.quick ? 40 : options.vms;
  const int rounds = options.quick ? 1 : 3;
  const auto file = stand_in_fleet(options, "many", "m", vms);
  std::vector<double> plain, confined;
  for (int round = 0; round < rounds; ++round) {
    plain.push_back(fleet_up(options, file, "off-" + std::to_string(round), "off"));
    confined.push_back(fleet_up(options, file, "on-" + std::to_string(round), "on"));
  }
  std::printf("confine: %d stand-in VMs through crosvisord, median of %d round(s)\n", vms, rounds);
  std::printf("| | fleet up, seconds | per VM |\n|---|---|---|\n");
  std::printf("| --confine off (baseline) | %.3f | %.2f ms |\n", median(plain),
              1000 * median(plain) / vms);
  std::printf("| confined | %.3f | %.2f ms |\n", median(confined), 1000 * median(confined) / vms);
  std::printf("| ratio | %.2f | |\n", median(confined) / median(plain));
  return 0;
}

}  // namespace crosvisor::bench
