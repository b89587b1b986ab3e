// `vm console NAME|CID [--force]`: the terminal attached to a running debug = full VM's serial
// console in both directions, as `virsh console` does: raw mode, Ctrl-] leaves, one writer at a
// time (--force takes the input over). The VM goes on when the console is left.
#pragma once

#include <string>

#include "cli/daemon_commands.hpp"

namespace crosvisor::cli {

int console_vm(const DaemonOptions& options, const std::string& vm, bool force);

}  // namespace crosvisor::cli
