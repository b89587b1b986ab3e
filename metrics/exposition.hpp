// crosvisord's figures in Prometheus's text exposition format (version 0.0.4), from the answer
// to a `stats` request (protocol/replies.hpp, stats_json) and the daemon's own /proc figures.
// Names and labels follow Prometheus's conventions: base units (seconds, bytes), _total for
// counters, the process_* names of its client libraries for the daemon itself. docs/sandbox.md
// lists them.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace crosvisor::metrics {

struct DaemonFigures {
  std::string version;
  std::uint64_t resident_bytes = 0;
  std::uint64_t open_fds = 0;
  double cpu_seconds = 0;
  double start_time_seconds = 0;  // Unix time
  bool stats_failed = false;      // the VMs' figures could not be had: only the daemon's
};

// This process's own figures, from /proc/self.
DaemonFigures own_figures(const std::string& version);

// `vms`: a stats reply's "vms" array.
std::string exposition(const nlohmann::json& vms, const DaemonFigures& daemon);

// A label value with \, " and newlines escaped.
std::string label_value(const std::string& text);

}  // namespace crosvisor::metrics
