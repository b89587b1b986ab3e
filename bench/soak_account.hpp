// What a crosvisord and its VMs can leave behind, counted from outside as an operator would:
// /proc, /sys/class/net, cgroupfs, the lab's directories. The soak (bench/soak_bench.cpp) takes
// an account after every trial; every kind must come back to zero.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace crosvisor::bench {

// What the account compares against: taken when a fresh crosvisord of the lab is idle.
struct Baseline {
  std::size_t daemon_fds = 0;
  std::set<std::string> host_links;    // /sys/class/net of the host's namespace
  std::set<std::string> runtime_dirs;  // entries of the daemon's runtime directory but its own
};

struct Account {
  // Resource kind -> one line per thing left: processes, zombies, dnsmasq, daemon_fds,
  // cid_locks, runtime_dirs, state_files, sockets, netns, links, cgroups.
  std::map<std::string, std::vector<std::string>> left;
  bool clean() const { return left.empty(); }
  std::string to_string() const;
};

// The lab's layout, as crosvisord was started in it.
struct LabPaths {
  // Everything of the lab's lives under it (socket, run, state), and every lab VM's kernel
  // command line names it (a VMM's other arguments name only fds).
  std::filesystem::path dir;
  std::filesystem::path socket;
  std::filesystem::path runtime_dir;
  std::filesystem::path state_dir;
};

// The kinds of resources an account counts, in the order reports list them.
const std::vector<std::string>& resource_kinds();

Baseline take_baseline(const LabPaths& lab, pid_t daemon);
// Everything of the lab's still there, with no VM, fleet or network left alive.
Account take_account(const LabPaths& lab, pid_t daemon, const Baseline& baseline);

}  // namespace crosvisor::bench
