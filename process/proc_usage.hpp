// What a process has used, as /proc shows it: CPU time (stat), resident memory (status) and the
// block I/O it caused (io). The parsers are plain functions of the files' text.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string_view>

#include "crosvisor/vm_event.hpp"
#include "process/cgroups.hpp"

namespace crosvisor::process {

struct ProcessUsage {
  std::optional<std::uint64_t> cpu_usec;
  std::optional<std::uint64_t> rss_bytes;
  std::optional<std::uint64_t> read_bytes;
  std::optional<std::uint64_t> write_bytes;
  std::optional<std::uint64_t> threads;
};

// /proc/PID/stat: utime + stime (fields 14 and 15, after the parenthesised command, which may
// hold spaces and parentheses), in microseconds for `ticks_per_second`.
std::optional<std::uint64_t> cpu_usec_from_stat(std::string_view stat, long ticks_per_second);
// /proc/PID/status: a "Key:  N kB" or "Key: N" line's number.
std::optional<std::uint64_t> status_number(std::string_view status, std::string_view key);
// /proc/PID/io: "read_bytes: N" and "write_bytes: N" (storage I/O, not reads served by cache).
std::optional<std::uint64_t> io_number(std::string_view io, std::string_view key);

// Each read on its own: what cannot be read (the process ended, io needs ptrace access) is
// missing.
ProcessUsage usage_of(pid_t pid);

// A VM's VMM `pid`: its cgroup's counters where it has one (the VMM and all it started), /proc's
// for the rest. File reads: not on an actor's thread.
VmUsage vm_usage_of(pid_t pid, const VmCgroup* cgroup);

}  // namespace crosvisor::process
