// crosvisor-bench SCENARIO...: runs benchmark scenarios and prints their figures.
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>

#include "bench/bench.hpp"
#include "supervisor/signals.hpp"

int main(int argc, char** argv) {
  using namespace crosvisor::bench;
  const std::map<std::string, std::function<int(const Options&)>> scenarios{
      {"composite", composite_scenario},
      {"cid", cid_scenario},
  };
  CLI::App app{"crosvisor-bench: measure crosvisor against same-run baselines"};
  std::vector<std::string> chosen;
  Options options;
  options.work_dir =
      std::filesystem::temp_directory_path() / ("crosvisor-bench-" + std::to_string(getpid()));
  app.add_option("SCENARIO", chosen, "Scenarios to run (default: all)");
  app.add_flag("--quick", options.quick, "Fewer repetitions");
  app.add_option("--work-dir", options.work_dir, "Scratch directory");
  CLI11_PARSE(app, argc, argv);
  crosvisor::raise_fd_limit();
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
