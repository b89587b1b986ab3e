// What the benchmarks that drive crosvisord from outside share: its binaries beside this one,
// children with their output in files, `vm` against a socket, and polling with a limit.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "bench/bench.hpp"
#include "process/launch.hpp"

namespace crosvisor::bench {

// A program built beside this one (crosvisord, vm).
std::filesystem::path beside(const char* name);

// A child of the benchmark's own, its output in a file; SIGKILLed and reaped when it goes.
struct Child {
  process::SpawnedChild child;
  bool alive = true;
  // In network namespace `netns`, when one is named (through ip netns exec, which execs).
  Child(const std::filesystem::path& binary, std::vector<std::string> args,
        const std::filesystem::path& log, const std::string& netns = {});
  void kill();
  ~Child() { kill(); }
};

// Runs a command through the shell, or throws with its output.
std::string run(const std::string& command);
// `vm ARGS` against the daemon at `socket` (a path: reached from any namespace), or throws.
std::string vm(const std::filesystem::path& socket, const std::string& args);
// Seconds until `done` holds, polled every 100 ms (at most `limit`, then throws).
double seconds_until(const std::function<bool()>& done, std::chrono::seconds limit);
// A fleet file in the work directory: `count` crosvm stand-ins named PREFIX-{index}, with
// `vm_keys` added to their [[vm]] table (the stand-in reads no kernel: a placeholder file).
std::filesystem::path stand_in_fleet(const Options& options, const std::string& fleet,
                                     const std::string& prefix, int count,
                                     const std::string& vm_keys = "");
// crosvisord's arguments for a daemon of its own in `dir`, with the crosvm stand-in.
std::vector<std::string> daemon_args(const Options& options, const std::filesystem::path& dir);

}  // namespace crosvisor::bench
