// A crosvisord of the test's own: its own process on a socket in a temporary directory, with the
// crosvm stand-in as its crosvm, driven the way users drive it (the `vm` command) or by hand.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "support/processes.hpp"
#include "support/subprocess.hpp"
#include "support/temp_dir.hpp"

namespace crosvisor::test {

struct DaemonOptions {
  std::vector<std::string> args = {};  // crosvisord's own options, after the socket and crosvm
  std::string crosvm = FAKE_CROSVM_BINARY;
  std::vector<std::string> environment = {};  // VAR=VALUE added to the daemon's (through env(1))
  bool own_runtime_dir = true;                // --runtime-dir in the test's directory
  bool quiet = false;                         // --log-level warn: for tests that log a lot
  std::filesystem::path state_dir = {};       // --state-dir (default: state/ in its directory)
};

class DaemonProcess {
 public:
  explicit DaemonProcess(DaemonOptions options = {});

  TempDir dir;  // reachable by every user (0711), so a second user's client can connect
  std::filesystem::path socket = dir / "control.sock";
  std::unique_ptr<Subprocess> process;

  // The environment of a client of this daemon: a plain PATH and CROSVISOR_SOCKET.
  std::vector<std::string> env() const;
  // Runs `vm ARGS` against this daemon to the end, stderr with stdout.
  CommandResult vm(const std::string& args) const;
  // The daemon's resident memory.
  std::size_t rss_kib() const;
};

}  // namespace crosvisor::test
