// Where crosvisor keeps its runtime state by default, and where `vm` finds crosvisord.
//
// A user's runtime directory must be theirs alone: /run/crosvisor for root; for other users
// $XDG_RUNTIME_DIR/crosvisor, else /run/user/UID/crosvisor, and only when that base directory is
// the user's own and nobody else may write to it. There is deliberately no fallback under /tmp:
// a predictable path there can be made first by another user, who would then receive the
// files (fds) its victim hands to "its" daemon.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "crosvisor/error.hpp"

namespace crosvisor {

// The calling user's runtime directory (created on first use by whoever needs it), or the
// reason there is none.
Expected<std::filesystem::path> user_runtime_dir();
// The socket of the user's own crosvisord: <user_runtime_dir>/control.sock.
Expected<std::filesystem::path> user_control_socket();
// The socket of the host's crosvisord, run by root (with --shared to serve other users):
// /run/crosvisor/control.sock, or $CROSVISOR_SYSTEM_SOCKET on hosts that run it elsewhere.
std::filesystem::path system_control_socket();

// Where the user's crosvisord keeps what outlives it (memory dumps): $CROSVISOR_STATE_DIR, else
// /var/lib/crosvisor for root, $XDG_STATE_HOME/crosvisor or ~/.local/state/crosvisor for others
// (the FHS and the XDG base directories).
Expected<std::filesystem::path> user_state_dir();

// The user's runtime directory, or a fresh private one (mkdtemp under the temporary directory)
// when the user has none: for embedding applications that name none themselves.
std::filesystem::path default_runtime_dir();

// Whether `dir` may hold this user's private files: a real directory (not a symlink), owned by
// the user (or root), writable by nobody else. The error says what is wrong.
Expected<void> check_private_dir(const std::filesystem::path& dir);

}  // namespace crosvisor
