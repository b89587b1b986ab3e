// An idle crosvisord: serving, no VM, after one request has gone through every layer (`vm list`).
// Reported: its resident set and threads, and where the memory goes (/proc/PID/smaps, summed by
// mapping: each library's pages, the heap, thread stacks), beside the same for the smallest
// dynamically linked program (`sleep`, the floor any process pays) in the same run.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "bench/bench.hpp"
#include "bench/daemon_child.hpp"
#include "bench/stand_in.hpp"
#include "process/proc_usage.hpp"

namespace crosvisor::bench {
namespace {

struct Footprint {
  std::map<std::string, std::uint64_t> rss_kib;  // by mapping: a file, [heap], [stack], [anon]
  std::uint64_t total_kib = 0;
  std::uint64_t anonymous_kib = 0;
  std::uint64_t proportional_kib = 0;  // Pss: pages shared with other processes divided
  std::uint64_t private_kib = 0;       // what only this process holds
  std::uint64_t threads = 0;
};

Footprint footprint_of(pid_t pid) {
  Footprint footprint;
  std::ifstream smaps("/proc/" + std::to_string(pid) + "/smaps");
  if (!smaps)
    throw std::runtime_error("idle: cannot read the smaps of pid " + std::to_string(pid));
  std::string line, mapping = "[anon]";
  while (std::getline(smaps, line)) {
    std::istringstream words(line);
    std::string first;
    words >> first;
    if (first.find('-') != std::string::npos && first.back() != ':') {
      // A mapping's header: range, perms, offset, device, inode and maybe a name.
      std::string perms, offset, device, inode, name;
      words >> perms >> offset >> device >> inode;
      std::getline(words >> std::ws, name);
      mapping = name.empty() ? "[anon]" : name.rfind("[stack", 0) == 0 ? "[stack]" : name;
      if (mapping.rfind('/') != std::string::npos && mapping.front() == '/')
        mapping = mapping.substr(mapping.rfind('/') + 1);
      continue;
    }
    std::uint64_t kib = 0;
    words >> kib;
    if (first == "Rss:") {
      footprint.rss_kib[mapping] += kib;
      footprint.total_kib += kib;
    } else if (first == "Anonymous:") {
      footprint.anonymous_kib += kib;
    } else if (first == "Pss:") {
      footprint.proportional_kib += kib;
    } else if (first == "Private_Clean:" || first == "Private_Dirty:") {
      footprint.private_kib += kib;
    }
  }
  footprint.threads = process::usage_of(pid).threads.value_or(0);
  return footprint;
}

void print(const char* what, const Footprint& footprint, std::size_t rows) {
  std::vector<std::pair<std::uint64_t, std::string>> sorted;
  for (const auto& [name, kib] : footprint.rss_kib)
    sorted.emplace_back(kib, name);
  std::sort(sorted.rbegin(), sorted.rend());
  std::printf(
      "idle: %s: %.1f MiB resident (%.1f MiB anonymous), %.1f MiB proportional (Pss), %.1f "
      "MiB private, %llu threads\n",
      what, footprint.total_kib / 1024.0, footprint.anonymous_kib / 1024.0,
      footprint.proportional_kib / 1024.0, footprint.private_kib / 1024.0,
      static_cast<unsigned long long>(footprint.threads));
  std::printf("| mapping | resident |\n|---|---|\n");
  std::uint64_t shown = 0;
  for (std::size_t i = 0; i < std::min(rows, sorted.size()); ++i) {
    std::printf("| %s | %.2f MiB |\n", sorted[i].second.c_str(), sorted[i].first / 1024.0);
    shown += sorted[i].first;
  }
  if (footprint.total_kib > shown)
    std::printf("| the other %zu | %.2f MiB |\n", sorted.size() - std::min(rows, sorted.size()),
                (footprint.total_kib - shown) / 1024.0);
}

}  // namespace

int idle_scenario(const Options& options) {
  const auto home = options.work_dir / "idle";
  std::filesystem::create_directories(home);
  Child floor("/bin/sleep", {"600"}, home / "sleep.log");
  Child daemon(beside("crosvisord"), daemon_args(options, home), home / "log");
  seconds_until([&] { return std::filesystem::exists(home / "control.sock"); },
                std::chrono::seconds(10));
  vm(home / "control.sock", "list");
  // Settled: whatever starts lazily (the state keeper's first look, timers) has run.
  std::this_thread::sleep_for(std::chrono::seconds(options.quick ? 1 : 3));
  const Footprint served = footprint_of(daemon.child.pid);
  const Footprint smallest = footprint_of(floor.child.pid);
  print("crosvisord, idle", served, options.quick ? 8 : 16);
  print("sleep (the floor of a dynamically linked program)", smallest, 4);
  std::printf("idle: crosvisord %.1f MiB, target 8 MiB: %s\n", served.total_kib / 1024.0,
              served.total_kib <= 8 * 1024 ? "met" : "MISSED");
  return 0;
}

}  // namespace crosvisor::bench
