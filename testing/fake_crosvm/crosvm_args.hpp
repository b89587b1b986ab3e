// TEST DOUBLE. The command line of `crosvm [global options] run [options] KERNEL`, parsed the way
// crosvm's argh-based parser does: long options as `--opt value` or `--opt=value`, the short
// forms crosvm defines, repeatable options only where crosvm collects a list, one positional
// kernel, and a failure (crosvm exits 35) on anything it would not accept. Pure logic.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "crosvisor/error.hpp"

namespace crosvisor::fake_crosvm {

struct BlockOption {
  std::string path;
  bool read_only = false;
  bool lock = true;  // crosvm's default: flock the image (and each composite component)
};

struct SerialOption {
  std::string type;  // stdout, syslog, sink, file, unix, unix-stream
  std::optional<std::string> path;
  std::optional<std::string> input;  // what the guest reads on this port (file or fd path)
  std::string hardware = "serial";
  std::uint32_t num = 1;
  bool console = false;
};

// --net: crosvm takes a TAP three ways; crosvisor hands it an fd, as AVF does.
struct NetOption {
  std::optional<int> tap_fd;
  std::optional<std::string> tap_name;
  std::optional<std::string> host_ip;
  std::optional<std::string> mac;  // as crosvm prints it: six hex bytes, colons
};

struct RunArgs {
  // Global options.
  bool extended_status = false;
  bool no_syslog = false;
  std::optional<std::string> log_level;
  // `run` options.
  std::optional<std::string> name;
  std::uint64_t mem_mib = 256;
  std::uint32_t cpus = 1;
  std::optional<std::string> kernel;
  std::optional<std::string> bios;
  std::optional<std::string> initrd;
  std::string params;  // every --params, joined by spaces
  std::optional<std::uint32_t> cid;
  std::optional<std::string> socket;
  std::vector<BlockOption> blocks;
  std::vector<SerialOption> serials;
  std::vector<NetOption> nets;
  bool disable_sandbox = false;
  bool protected_vm = false;
};

// crosvm's exit code for arguments its parser (argh) refuses; a refusal of what the arguments
// mean (no kernel, a kernel and --bios, --cid with --vsock, a serial port given twice) is a
// run error, exit 1, as crosvm's TryFrom<RunCommand> and validate_config errors are.
inline constexpr int kInvalidArgsExit = 35;

// crosvm's prepare_argh_args: every argv element that begins with '-' and contains '=' is split
// at its first '=' before argh sees it, option values included ("-v root=/dev/vda" becomes
// "-v root" and "/dev/vda").
std::vector<std::string> prepare_argh_args(const std::vector<std::string>& args);

// argv without argv[0]. The error message is what crosvm would print; its kind tells the exit:
// invalid_config for argh's refusals (35), launch for semantic ones (1).
Expected<RunArgs> parse_crosvm_args(const std::vector<std::string>& args);

// Every path of the form /proc/self/fd/N in the arguments and every --net tap-fd, as N (the fds
// crosvm will use).
std::vector<int> named_fds(const RunArgs& args);
// N when `path` is /proc/self/fd/N.
std::optional<int> proc_fd_number(const std::string& path);

}  // namespace crosvisor::fake_crosvm
