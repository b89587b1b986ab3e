// `vm events`, `vm wait` and `vm rm`: what happens to VMs, as virsh event / docker events, wait
// and rm have it. Errors go to stderr with a non-zero exit.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cli/daemon_client.hpp"
#include "cli/daemon_commands.hpp"
#include "crosvisor/vm_state.hpp"

namespace crosvisor::cli {

// Streams every event of the user's VMs (or of `names`) until interrupted; with `since` (30s, 5m,
// 2h, Unix seconds, or YYYY-MM-DDTHH:MM:SS local time) the remembered ones from then first.
// `--since TEXT` as Unix ms, or nothing after saying on stderr why it is not a time.
std::optional<std::int64_t> since_option(const std::string& text);
int watch_events(const DaemonOptions& options, const std::optional<std::string>& since,
                 const std::vector<std::string>& names, bool all_users);

// Returns once `vm` is `until` (ready, running or dead; running includes ready): 0, or for dead
// the death reason's exit code; a VM that dies before it is ready exits with its death's code
// (refused, 1, for a clean power-off).
int wait_vm(const DaemonOptions& options, const std::string& vm, VmState until);
// The same wait on a session that already exists (vm run --detach), printing each state change
// as `vm run` does. `signal_fd`: Ctrl-C only leaves.
int wait_on(DaemonClient& client, const std::string& vm, VmState until, bool say_states,
            int signal_fd);

// Forgets a dead VM the daemon remembers.
int remove_vm(const DaemonOptions& options, const std::string& vm);

// "30s", "5m", "2h", "1d", Unix seconds, or "YYYY-MM-DDTHH:MM:SS" (local): Unix time in ms.
std::optional<std::int64_t> parse_since(const std::string& text, std::int64_t now_ms);

}  // namespace crosvisor::cli
