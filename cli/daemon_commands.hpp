// `vm list`, `vm info`, `vm stop`, `vm logs`, `vm version`: requests to crosvisord, human tables
// by default and stable JSON with --json. Errors go to stderr with a non-zero exit.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace crosvisor::cli {

struct DaemonOptions {
  std::optional<std::filesystem::path> socket;
  bool json = false;
};

int list_vms(const DaemonOptions& options, bool all_users);
int show_info(const DaemonOptions& options, const std::string& vm);
int stop_vm(const DaemonOptions& options, const std::string& vm, std::optional<double> timeout_s,
            bool force);
int show_logs(const DaemonOptions& options, const std::string& vm, std::uint32_t lines,
              bool follow);
int show_version(const DaemonOptions& options);

}  // namespace crosvisor::cli
