// Process-wide signal set-up for crosvisor's programs.
#pragma once

#include <csignal>
#include <filesystem>

#include "core/unique_fd.hpp"
#include "crosvisor/error.hpp"

namespace crosvisor::process {

// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread (call before any thread starts, so all
// inherit it) and returns the set, for Reactor::watch_signals.
sigset_t block_stop_signals();

// Raises the soft RLIMIT_NOFILE to the hard limit: a supervisor holds several fds per VM (and a
// lock per vsock CID), far beyond the usual soft limit of 1024.
void raise_fd_limit();

// A fresh private directory for a supervisor that serves only this process, held by `owner_lock`
// (flock) for as long as the process lives. Directories left by processes that died without
// cleaning up (SIGKILL) are removed on the way: their lock is free. It is made under `base`, or
// without one under user_runtime_dir() (the temporary directory when there is none, or it is not
// writable: mkdtemp's random name cannot be taken first).
struct PrivateRuntimeDir {
  std::filesystem::path path;
  UniqueFd owner_lock;
};
Expected<PrivateRuntimeDir> make_private_runtime_dir(const std::filesystem::path& base = {});

}  // namespace crosvisor::process
