// crosvisor-bench SCENARIO...: runs benchmark scenarios and prints their figures.
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>

#include "bench/bench.hpp"
#include "process/signals.hpp"
#include "process/spawner.hpp"

namespace {

// A supervisor of N VMs holds four fds for each (console, VMM output, pidfd, CID reservation):
// 40 000 at 10 000 VMs, more than a default hard limit. Raised when this process may
// (CAP_SYS_RESOURCE); said when it may not, before a scenario fails halfway.
void raise_fd_limit_for(int vms) {
  rlimit limit{};
  const rlim_t wanted = 4 * static_cast<rlim_t>(vms) + 4096;
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= wanted)
    return;
  rlimit raised{wanted, std::max(limit.rlim_max, wanted)};
  if (::setrlimit(RLIMIT_NOFILE, &raised) != 0) {
    std::cerr << "crosvisor-bench: " << vms << " VMs need about " << wanted
              << " open files, and this process may have " << limit.rlim_max
              << " (raising the hard limit needs CAP_SYS_RESOURCE): expect too many open files\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  using namespace crosvisor::bench;
  crosvisor::process::serve_if_spawner(argc, argv);
  const std::map<std::string, std::function<int(const Options&)>> scenarios{
      {"composite", composite_scenario},
      {"cid", cid_scenario},
      {"scale", scale_scenario},
      {"cascade", cascade_scenario},
      {"fleet", fleet_scenario},
      {"control", control_scenario},
      {"lifecycles", lifecycles_scenario},
      {"boot", boot_scenario},
      {"net", net_scenario},
      {"store", store_scenario},
      {"cluster", cluster_scenario},
      {"confine", confine_scenario},
      {"soak", soak_scenario},
      {"consoles", console_scenario},
      {"idle", idle_scenario},
      {"list", list_scenario},
      {"real-fleet", real_fleet_scenario},
  };
  CLI::App app{"crosvisor-bench: measure crosvisor against same-run baselines"};
  std::vector<std::string> chosen;
  Options options;
  // tmpfs where there is one: supervisors keep their runtime files on tmpfs (/run,
  // $XDG_RUNTIME_DIR), and on ext4 inode allocation for sockets and directories dominates.
  const std::filesystem::path scratch =
      access("/dev/shm", W_OK) == 0 ? "/dev/shm" : std::filesystem::temp_directory_path();
  options.work_dir = scratch / ("crosvisor-bench-" + std::to_string(getpid()));
  app.add_option("SCENARIO", chosen, "Scenarios to run (default: all)");
  app.add_flag("--quick", options.quick, "Fewer repetitions");
  app.add_option("--work-dir", options.work_dir, "Scratch directory");
  app.add_option(
         "--vms", options.vms,
         "VMs in the scale, consoles, confine and list scenarios (default 1000; 10000 for list)")
      ->check(CLI::Range(1, 20000));
  app.add_option("--fake-crosvm", options.fake_crosvm, "The crosvm stand-in (scale scenario)");
  app.add_option("--guest-dir", options.guest_dir, "The test guest (boot scenario)");
  app.add_option("--trials", options.trials, "Trials of the soak (default 1000, 14 with --quick)")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--kinds", options.soak_kinds,
                 "The soak's kinds of trial (default: all): client-starting client-ready "
                 "client-stopping vmm daemon follower mixed");
  app.add_option("--seed", options.seed, "The soak's random seed (default: a new one, printed)");
  app.add_option(
      "--evidence-dir", options.evidence_dir,
      "Where the soak keeps what failing trials left (default: /tmp/crosvisor-soak-SEED)");
  CLI11_PARSE(app, argc, argv);
  if (options.fake_crosvm.empty())
    options.fake_crosvm =
        std::filesystem::read_symlink("/proc/self/exe").parent_path() / "fake-crosvm";
  if (options.guest_dir.empty())
    options.guest_dir = std::filesystem::read_symlink("/proc/self/exe").parent_path() / "guest";
  crosvisor::process::raise_fd_limit();
  raise_fd_limit_for(options.vms);
  if (chosen.empty()) {
    for (const auto& [name, run] : scenarios)
      chosen.push_back(name);
  }
  int status = 0;
  for (const auto& name : chosen) {
    auto it = scenarios.find(name);
    if (it == scenarios.end()) {
      std::cerr << "crosvisor-bench: unknown scenario " << name << '\n';
      return 2;
    }
    try {
      status |= it->second(options);
    } catch (const std::exception& e) {
      std::cerr << "crosvisor-bench: " << name << ": " << e.what() << '\n';
      status = 1;
    }
  }
  std::error_code ignored;
  std::filesystem::remove_all(options.work_dir, ignored);
  return status;
}
