// A socket of the test's own for `vm` commands that start crosvisord on demand (CROSVISOR_SOCKET
// in a temporary directory), so that tests never touch the user's or the host's daemon. Whatever
// daemon serves it is gone when this is.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include "support/processes.hpp"
#include "support/subprocess.hpp"
#include "support/temp_dir.hpp"

namespace crosvisor::test {

struct OnDemandSocket {
  TempDir dir;
  std::filesystem::path socket = dir / "control.sock";

  ~OnDemandSocket();
  // An environment for `vm` (PATH and CROSVISOR_SOCKET), plus `extra` entries.
  std::vector<std::string> env(const std::vector<std::string>& extra = {}) const;
  // Runs `vm ARGS` with this socket to the end (stdout and stderr together).
  CommandResult vm(const std::string& args) const;
  // The crosvisord processes serving this socket.
  std::vector<pid_t> daemons() const;
};

}  // namespace crosvisor::test
