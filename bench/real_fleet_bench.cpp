// The example fleet of real guests (examples/fleet.toml: db, then two web replicas that fetch
// from db over the fleet's network, then lb that fetches from both; QEMU under TCG) brought up
// through crosvisord until all four are ready, at several concurrencies; beside, in the same run,
// one member booted alone (db, with its composite disk and network), from which the sum of the
// members' single boots (4 of them), their max (1) and the fleet's critical path (db, a web, lb:
// 3 in a row) follow. Needs root (the fleet's network) and the test guest (guest/build).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
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

// Each member's boot in the last fleet up: seconds from its `starting` to its `ready`, from the
// daemon's remembered events (vm events) since `since` (Unix seconds).
std::map<std::string, double> member_boots(const std::filesystem::path& socket, long since) {
  // `vm events` follows until interrupted: what was remembered comes at once.
  const std::string said =
      run("timeout 2 env CROSVISOR_SOCKET=" + socket.string() + " " + beside("vm").string() +
          " events --json --since " + std::to_string(since) + " || true");
  std::map<std::string, std::int64_t> starting, ready;
  std::istringstream lines(said);
  std::string line;
  while (std::getline(lines, line)) {
    const auto event = nlohmann::json::parse(line, nullptr, false);
    if (event.is_discarded() || !event.is_object() || !event.contains("vm"))
      continue;
    const auto kind = event.value("kind", std::string());
    auto& table = kind == "starting" ? starting : ready;
    if (kind == "starting" || kind == "ready")
      table[event.at("vm").get<std::string>()] = event.at("at_ms").get<std::int64_t>();
  }
  std::map<std::string, double> boots;
  for (const auto& [vm, at] : ready) {
    if (starting.count(vm) != 0)
      boots[vm] = (at - starting[vm]) / 1000.0;
  }
  return boots;
}

struct FleetRun {
  double all_ready = 0;
  std::map<std::string, double> boots;  // each member's, within this run
};

// From `vm fleet up` to its return, every member ready (checked), then taken down.
FleetRun fleet_up(const std::filesystem::path& socket, const std::filesystem::path& file,
                  const std::string& name, int members) {
  const long since = static_cast<long>(std::time(nullptr));
  const auto start = Clock::now();
  // Its progress (stderr) comes first in the output; the status is the last object.
  const std::string said = vm(socket, "fleet up --json " + file.string());
  const auto at = said.rfind("\n{");
  const auto status = nlohmann::json::parse(at == std::string::npos ? said : said.substr(at + 1));
  FleetRun result;
  result.all_ready = std::chrono::duration<double>(Clock::now() - start).count();
  result.boots = member_boots(socket, since);
  vm(socket, "fleet down " + name);
  if (status.value("ready", 0) != members ||
      result.boots.size() != static_cast<std::size_t>(members))
    throw std::runtime_error("real-fleet: " + name + " came up with " +
                             std::to_string(status.value("ready", 0)) + " of " +
                             std::to_string(members) + " ready");
  return result;
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

  const int rounds = options.quick ? 1 : 2;
  const std::vector<int> concurrencies =
      options.quick ? std::vector<int>{2} : std::vector<int>{1, 2, 4};
  std::vector<double> alone;
  std::vector<std::vector<FleetRun>> fleets(concurrencies.size());
  for (int round = 0; round < rounds; ++round) {
    alone.push_back(
        fleet_up(socket, example_fleet(options, examples, 1, true), "solo", 1).all_ready);
    for (std::size_t i = 0; i < concurrencies.size(); ++i) {
      fleets[i].push_back(
          fleet_up(socket, example_fleet(options, examples, concurrencies[i], false), "demo", 4));
    }
  }
  std::printf(
      "real-fleet: examples/fleet.toml (db; web-0 and web-1 after db; lb after both), "
      "QEMU TCG, %u cores, median of %d\n",
      std::thread::hardware_concurrency(), rounds);
  std::printf("real-fleet: db alone, up to ready through crosvisord: %.2f s\n", median(alone));
  std::printf(
      "| concurrency | all ready | members' boots db / web-0 / web-1 / lb | sum | max | "
      "critical path (db + slower web + lb) | all ready vs path | vs sum |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  for (std::size_t i = 0; i < concurrencies.size(); ++i) {
    std::vector<double> all, sum, max, path;
    std::map<std::string, std::vector<double>> each;
    for (const auto& run : fleets[i]) {
      const auto& b = run.boots;
      all.push_back(run.all_ready);
      double total = 0, longest = 0;
      for (const auto& [vm, seconds] : b) {
        total += seconds;
        longest = std::max(longest, seconds);
        each[vm].push_back(seconds);
      }
      sum.push_back(total);
      max.push_back(longest);
      // With one at a time, the two replicas boot one after the other.
      const double webs = concurrencies[i] == 1 ? b.at("web-0") + b.at("web-1")
                                                : std::max(b.at("web-0"), b.at("web-1"));
      path.push_back(b.at("db") + webs + b.at("lb"));
    }
    std::printf(
        "| %d | %.1f s | %.1f / %.1f / %.1f / %.1f s | %.1f s | %.1f s | %.1f s | %.2f | "
        "%.2f |\n",
        concurrencies[i], median(all), median(each["db"]), median(each["web-0"]),
        median(each["web-1"]), median(each["lb"]), median(sum), median(max), median(path),
        median(all) / median(path), median(all) / median(sum));
  }
  return 0;
}

}  // namespace crosvisor::bench
