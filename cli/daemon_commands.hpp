// `vm list`, `vm info`, `vm stop`, `vm logs`, `vm version`: requests to crosvisord, human tables
// by default and stable JSON with --json. Errors go to stderr with a non-zero exit.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "protocol/requests.hpp"

namespace crosvisor::cli {

struct DaemonOptions {
  std::optional<std::filesystem::path> socket;
  bool json = false;
};

// A --timeout in seconds as the protocol's milliseconds.
inline std::optional<std::uint32_t> milliseconds_of(std::optional<double> seconds) {
  if (!seconds)
    return std::nullopt;
  return static_cast<std::uint32_t>(*seconds * 1000);
}
// A VM as the command line names it: a name, or a CID (all digits).
Expected<protocol::Target> target_named(const std::string& text);

// dead: the dead VMs crosvisord remembers too (virsh list --all, docker ps -a); quiet: names only.
int list_vms(const DaemonOptions& options, bool all_users, bool dead = false, bool quiet = false);
// `vm stats [VM...]`: CPU time, memory, block I/O, tasks, uptime and restarts of running VMs.
int vm_stats(const DaemonOptions& options, const std::vector<std::string>& names, bool all_users);
int show_info(const DaemonOptions& options, const std::string& vm);
int stop_vm(const DaemonOptions& options, const std::string& vm, std::optional<double> timeout_s,
            bool force);
int show_logs(const DaemonOptions& options, const std::string& vm, std::uint32_t lines,
              bool follow);
int show_version(const DaemonOptions& options);
// A debug = full QEMU VM's memory as an ELF core: into `file` (created here, with this user's
// rights, never over an existing file), else into crosvisord's dump directory. Prints where.
int dump_vm(const DaemonOptions& options, const std::string& vm,
            const std::optional<std::filesystem::path>& file);

}  // namespace crosvisor::cli
