// One daemon per state directory. The control socket's lock keeps two daemons off one socket,
// but two on different sockets could name the same state directory (root's default,
// /var/lib/crosvisor): the second would take the first's fleet records for its own to restore,
// and its cgroups (named after the state directory) for a dead daemon's, and kill the VMMs in
// them. A lock file in the state directory, held for the daemon's life, refuses the second.
#pragma once

#include <filesystem>

#include "core/unique_fd.hpp"
#include "crosvisor/error.hpp"

namespace crosvisor::daemon {

// Locks `state_dir` (made if missing) for this daemon, which serves `socket` (written into the
// lock file, for the refusal a second daemon gets); ErrorKind::conflict when another live daemon
// holds it. The lock lasts as long as the returned fd.
Expected<UniqueFd> lock_state_dir(const std::filesystem::path& state_dir,
                                  const std::filesystem::path& socket);

}  // namespace crosvisor::daemon
