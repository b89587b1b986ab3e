// Chatty consoles: crosvm stand-ins (debug = full) through crosvisord, each told at once (SIGUSR1,
// fake_crosvm.flood) to print as fast as it can; crosvisord copies every byte to the VM's console
// log. Baseline, in the same run: the same stand-ins started directly, each console copied to a
// file by `cat`. Reported: the CPU each side spends per MB logged (crosvisord's, the cats'
// together) and their ratio; the longest any guest waited on a full console pipe (each stand-in
// times its own writes); and whether a `vm logs -f` of one VM kept up: every line, and how long
// after the log had the last one.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>
#include <vector>

#include "bench/bench.hpp"
#include "bench/daemon_child.hpp"
#include "bench/stand_in.hpp"
#include "process/launch.hpp"
#include "vmm/vmm_backend.hpp"

namespace crosvisor::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr const char* kFlooded = "fake-crosvm guest: flooded ";

struct Shape {
  int vms;
  std::uint64_t bytes_per_vm;
  std::string params() const {
    return "console=ttyS0 fake_crosvm.flood=" + std::to_string(bytes_per_vm);
  }
  double megabytes() const { return static_cast<double>(vms) * bytes_per_vm / 1e6; }
};

// CPU time of all of a process's threads, in microseconds, from the scheduler's own count
// (schedstat: nanoseconds; /proc's stat counts 10 ms ticks, coarser than a cat's share).
std::uint64_t cpu_usec(pid_t pid) {
  std::uint64_t nanoseconds = 0;
  std::error_code ec;
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream schedstat(task.path() / "schedstat");
    std::uint64_t on_cpu = 0;
    if (schedstat >> on_cpu)
      nanoseconds += on_cpu;
  }
  return nanoseconds / 1000;
}

// The end of a file, where the stand-in's last line is.
std::string tail_of(const std::filesystem::path& file, std::size_t bytes = 512) {
  std::ifstream in(file, std::ios::binary | std::ios::ate);
  if (!in)
    return {};
  const auto size = static_cast<std::size_t>(in.tellg());
  const std::size_t from = size > bytes ? size - bytes : 0;
  in.seekg(static_cast<std::streamoff>(from));
  std::string text(size - from, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  return text;
}

// The longest write wait, in microseconds, in the stand-in's report in `text`; -1 if none yet.
long long longest_wait_us(const std::string& text) {
  const auto at = text.rfind(kFlooded);
  if (at == std::string::npos)
    return -1;
  const auto longest = text.find("longest write ", at);
  if (longest == std::string::npos)
    return -1;
  return std::stoll(text.substr(longest + 14));
}

// Waits until every file ends with a stand-in's report; returns each one's longest wait.
std::vector<long long> await_reports(const std::vector<std::filesystem::path>& files,
                                     std::chrono::seconds limit) {
  std::vector<long long> waits(files.size(), -1);
  std::size_t done = 0;
  seconds_until(
      [&] {
        for (std::size_t i = 0; i < files.size(); ++i) {
          if (waits[i] < 0 && (waits[i] = longest_wait_us(tail_of(files[i]))) >= 0)
            ++done;
        }
        return done == files.size();
      },
      limit);
  return waits;
}

struct Side {
  double cpu_seconds = 0;  // spent copying, while the floods ran
  double wall = 0;         // signals sent to the last report logged
  std::vector<long long> waits_us;
};

// --- baseline: the stand-ins' consoles copied by cat ---------------------------------------------

Side cat_side(const Options& options, const Shape& shape) {
  const auto dir = options.work_dir / "cat";
  std::filesystem::create_directories(dir);
  std::vector<process::SpawnedChild> guests, cats;
  std::vector<std::filesystem::path> files;
  for (int i = 0; i < shape.vms; ++i) {
    VmSpec spec = stand_in_spec("cat-", i, options);
    spec.params = shape.params();
    auto launch = vmm::prepare_vmm_launch(
        spec, vmm::LaunchContext{
                  dir / ("vm-" + std::to_string(i)), 200'000u + static_cast<unsigned>(i), {}});
    if (!launch)
      throw std::runtime_error(launch.error().message);
    launch->request.binary = *process::resolve_binary(launch->request.binary);
    auto guest = process::spawn_child(launch->request);
    if (!guest)
      throw std::runtime_error(guest.error().message);
    launch->request.fds = process::FdPlan();  // the child's ends, closed here
    files.push_back(dir / ("vm-" + std::to_string(i) + ".log"));
    process::LaunchRequest cat;
    cat.binary = "/bin/cat";
    cat.fds.set(0, std::move(launch->console));
    cat.fds.set(
        1, UniqueFd(::open(files.back().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)));
    cat.fds.set(2, UniqueFd(::open("/dev/null", O_WRONLY | O_CLOEXEC)));
    auto copier = process::spawn_child(cat);
    if (!copier)
      throw std::runtime_error(copier.error().message);
    guests.push_back(std::move(*guest));
    cats.push_back(std::move(*copier));
  }
  seconds_until(
      [&] {
        return std::all_of(files.begin(), files.end(), [](const auto& file) {
          return tail_of(file).find(kReady) != std::string::npos;
        });
      },
      std::chrono::seconds(120));
  Side side;
  std::uint64_t before = 0;
  for (const auto& cat : cats)
    before += cpu_usec(cat.pid);
  const auto start = Clock::now();
  for (const auto& guest : guests)
    ::kill(guest.pid, SIGUSR1);
  side.waits_us = await_reports(files, std::chrono::seconds(600));
  side.wall = std::chrono::duration<double>(Clock::now() - start).count();
  std::uint64_t after = 0;
  for (const auto& cat : cats)
    after += cpu_usec(cat.pid);
  side.cpu_seconds = static_cast<double>(after - before) / 1e6;
  for (const auto& guest : guests)
    ::kill(guest.pid, SIGKILL);
  for (auto* children : {&guests, &cats}) {
    for (const auto& child : *children)
      ::waitpid(child.pid, nullptr, 0);
  }
  std::filesystem::remove_all(dir);
  return side;
}

// --- crosvisord ----------------------------------------------------------------------------------

struct Follower {
  std::size_t lines = 0;  // flood lines it printed
  double lag = -1;        // seconds after the log had the report, or -1: never
};

Side daemon_side(const Options& options, const Shape& shape, Follower& follower) {
  const auto home = options.work_dir / "daemon";
  std::filesystem::create_directories(home);
  const auto fleet = stand_in_fleet(options, "chatty", "c", shape.vms,
                                    "debug = \"full\"\nparams = \"" + shape.params() + "\"\n");
  Child daemon(beside("crosvisord"), daemon_args(options, home), home / "log");
  seconds_until([&] { return std::filesystem::exists(home / "control.sock"); },
                std::chrono::seconds(10));
  const auto socket = home / "control.sock";
  vm(socket, "fleet up " + fleet.string());
  std::vector<pid_t> pids(static_cast<std::size_t>(shape.vms), -1);
  for (const auto& entry : nlohmann::json::parse(vm(socket, "list --json"))) {
    const auto name = entry.at("name").get<std::string>();
    if (name.rfind("c-", 0) == 0 && entry.at("pid").is_number())
      pids.at(std::stoul(name.substr(2))) = entry.at("pid").get<pid_t>();
  }
  if (std::count(pids.begin(), pids.end(), -1) != 0)
    throw std::runtime_error("consoles: a VM of the fleet has no pid");
  std::vector<std::filesystem::path> files(pids.size());
  for (const auto& entry : std::filesystem::recursive_directory_iterator(home)) {
    const auto name = entry.path().filename().string();
    if (name.rfind("c-", 0) == 0 && entry.path().extension() == ".log")
      files.at(std::stoul(name.substr(2))) = entry.path();
  }
  if (std::count(files.begin(), files.end(), std::filesystem::path()) != 0)
    throw std::runtime_error("consoles: a VM of the fleet has no console log");

  // One user follows the first VM's console, as `vm logs -f c-0` does.
  const auto followed = home / "follower.out";
  Child logs(beside("vm"), {"--socket", socket.string(), "logs", "-f", "c-0"}, followed);
  seconds_until([&] { return tail_of(followed).find(kReady) != std::string::npos; },
                std::chrono::seconds(20));

  Side side;
  const std::uint64_t before = cpu_usec(daemon.child.pid);
  const auto start = Clock::now();
  for (pid_t pid : pids)
    ::kill(pid, SIGUSR1);
  side.waits_us = await_reports(files, std::chrono::seconds(600));
  side.wall = std::chrono::duration<double>(Clock::now() - start).count();
  side.cpu_seconds = static_cast<double>(cpu_usec(daemon.child.pid) - before) / 1e6;

  const auto logged = Clock::now();
  try {
    seconds_until([&] { return tail_of(followed).find(kFlooded) != std::string::npos; },
                  std::chrono::seconds(60));
    follower.lag = std::chrono::duration<double>(Clock::now() - logged).count();
  } catch (const std::exception&) {
    // It never saw the end: lag stays -1.
  }
  logs.kill();
  std::ifstream in(followed);
  std::string line;
  while (std::getline(in, line))
    follower.lines += line.find("fake-crosvm guest: flood ") != std::string::npos;
  vm(socket, "fleet down chatty --force");
  return side;
}

long long percentile(std::vector<long long> values, double p) {
  std::sort(values.begin(), values.end());
  return values[std::min(values.size() - 1, static_cast<std::size_t>(p * values.size()))];
}

}  // namespace

int console_scenario(const Options& options_in) {
  const Options options = prepare_stand_in(options_in);
  const Shape shape = options.quick ? Shape{20, 1 << 20} : Shape{options.vms, 1 << 20};
  const Side cat = cat_side(options, shape);
  Follower follower;
  const Side daemon = daemon_side(options, shape, follower);
  const auto per_mb = [&](const Side& side) { return 1000 * side.cpu_seconds / shape.megabytes(); };
  std::printf("consoles: %d stand-ins (debug = full) each printing %llu bytes at once, %.0f MB\n",
              shape.vms, static_cast<unsigned long long>(shape.bytes_per_vm), shape.megabytes());
  std::printf(
      "| | CPU per MB logged | all logged | MB/s | longest wait on a full console, p99 | max "
      "|\n|---|---|---|---|---|---|\n");
  for (const auto& [name, side] : {std::pair{"cat, one per console (baseline)", &cat},
                                   std::pair{"crosvisord (debug = full)", &daemon}}) {
    std::printf("| %s | %.3f ms | %.2f s | %.0f | %.1f ms | %.1f ms |\n", name, per_mb(*side),
                side->wall, shape.megabytes() / side->wall,
                percentile(side->waits_us, 0.99) / 1000.0,
                percentile(side->waits_us, 1.0) / 1000.0);
  }
  std::printf("| ratio | %.2f | %.2f | | | |\n", per_mb(daemon) / per_mb(cat),
              daemon.wall / cat.wall);
  const std::size_t expected = (shape.bytes_per_vm + 99) / 100;  // whole lines, the last too
  if (follower.lag < 0)
    std::printf("consoles: vm logs -f c-0: %zu of %zu lines; the report never came\n",
                follower.lines, expected);
  else
    std::printf("consoles: vm logs -f c-0: %zu of %zu lines, the report %.3f s after the log\n",
                follower.lines, expected, follower.lag);
  return follower.lines == expected && follower.lag >= 0 ? 0 : 1;
}

}  // namespace crosvisor::bench
