// The example fleet of real guests (examples/fleet.toml: db, then two web replicas that fetch
// from db over the fleet's network, then lb that fetches from both; QEMU under TCG) brought up
// through crosvisord until all four are ready, at several concurrencies; beside, in the same run,
// one member booted alone (db, with its composite disk and network), from which the sum of the
// members' single boots (4 of them), their max (1) and the fleet's critical path (db, a web, lb:
// 3 in a row) follow. Needs root (the fleet's network) and the test guest (guest/build).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "bench/bench.hpp"
#include "bench/daemon_child.hpp"

namespace crosvisor::bench {
namespace {

using Clock = std::chrono::steady_clock;

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in)
    throw std::runtime_error("real-fleet: cannot read " + path.string());
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The example with its paths made absolute, at `concurrency`; `only_db`: its first member alone.
std::filesystem::path example_fleet(const Options& options, const std::filesystem::path& examples,
                                    int concurrency, bool only_db) {
  std::string text = read_file(examples / "fleet.toml");
  text = std::regex_replace(text, std::regex(R"(\.\./build/guest/)"),
                            options.guest_dir.string() + "/");
  text = std::regex_replace(text, std::regex(R"("images/)"),
                            "\"" + (examples / "images").string() + "/");
  text = std::regex_replace(text, std::regex(R"(concurrency = \d+)"),
                            "concurrency = " + std::to_string(concurrency));
  if (only_db) {
    text = std::regex_replace(text, std::regex(R"(name = "demo")"), "name = \"solo\"");
    text = text.substr(0, text.find("[[vm]]\nname = \"web-{index}\""));
  }
  const auto file = options.work_dir /
                    ("fleet-" + std::to_string(concurrency) + (only_db ? "-db" : "") + ".toml");
  std::ofstream(file) << text;
  return file;
}

// Seconds from `vm fleet up` to its return, every member ready (checked); then taken down.
double fleet_up(const std::filesystem::path& socket, const std::filesystem::path& file,
                const std::string& name, int members) {
  const auto start = Clock::now();
  const auto status = nlohmann::json::parse(vm(socket, "fleet up --json " + file.string()));
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  vm(socket, "fleet down " + name);
  if (status.value("ready", 0) != members)
    throw std::runtime_error("real-fleet: " + name + " came up with " +
                             std::to_string(status.value("ready", 0)) + " of " +
                             std::to_string(members) + " ready");
  return seconds;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

}  // namespace

int real_fleet_scenario(const Options& options) {
  if (::geteuid() != 0)
    throw std::runtime_error("real-fleet: the example fleet's network needs root");
  const auto examples = beside("crosvisor-bench").parent_path().parent_path() / "examples";
  if (!std::filesystem::exists(options.guest_dir / "vmlinuz") ||
      !std::filesystem::exists(examples / "fleet.toml"))
    throw std::runtime_error("real-fleet: needs the test guest (" + options.guest_dir.string() +
                             ") and the examples (" + examples.string() + ")");
  const auto home = options.work_dir / "real-fleet";
  std::filesystem::create_directories(home);
  Child daemon(beside("crosvisord"), daemon_args(options, home), home / "log");
  const auto socket = home / "control.sock";
  seconds_until([&] { return std::filesystem::exists(socket); }, std::chrono::seconds(10));

  const int rounds = options.quick ? 1 : 3;
  const std::vector<int> concurrencies =
      options.quick ? std::vector<int>{2} : std::vector<int>{1, 2, 4};
  std::vector<double> single;
  std::vector<std::vector<double>> fleets(concurrencies.size());
  for (int round = 0; round < rounds; ++round) {
    single.push_back(fleet_up(socket, example_fleet(options, examples, 1, true), "solo", 1));
    for (std::size_t i = 0; i < concurrencies.size(); ++i) {
      fleets[i].push_back(
          fleet_up(socket, example_fleet(options, examples, concurrencies[i], false), "demo", 4));
    }
  }
  const double one = median(single);
  std::printf("real-fleet: examples/fleet.toml (4 test guests, QEMU TCG, %u cores), median of %d\n",
              std::thread::hardware_concurrency(), rounds);
  std::printf("| | to all ready | vs sum (4 boots) | vs critical path (3) | vs max (1) |\n");
  std::printf("|---|---|---|---|---|\n");
  std::printf("| db alone (one member's boot) | %.2f s | | | |\n", one);
  for (std::size_t i = 0; i < concurrencies.size(); ++i) {
    const double all = median(fleets[i]);
    std::printf("| fleet, concurrency %d | %.2f s | %.2f | %.2f | %.2f |\n", concurrencies[i], all,
                all / (4 * one), all / (3 * one), all / one);
  }
  return 0;
}

}  // namespace crosvisor::bench
