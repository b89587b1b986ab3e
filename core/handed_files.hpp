// Files a client opened itself and handed to the supervisor as fds (AVF's clients pass
// ParcelFileDescriptors; crosvisor's pass fds over the control socket or, embedded, directly).
// A VmSpec names such a file /proc/self/fd/N, N being the supervisor's fd. The supervisor then
// works on a duplicate of that fd, with the access mode the client gave it, and never opens the
// path: opening /proc/self/fd/N would reopen the file with the supervisor's own rights.
#pragma once

#include <filesystem>
#include <optional>
#include <string_view>

#include "core/unique_fd.hpp"
#include "crosvisor/error.hpp"

namespace crosvisor {

// N when `path` is exactly /proc/self/fd/N.
std::optional<int> handed_fd_number(const std::filesystem::path& path);

// A close-on-exec fd for the file at `path` (opened with `flags`), or a duplicate of the handed
// fd it names, which must allow writing when `flags` asks for it. Errors name the role and path.
Expected<UniqueFd> open_or_take(const std::filesystem::path& path, int flags,
                                std::string_view role);

}  // namespace crosvisor
