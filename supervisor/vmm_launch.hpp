// What a VMM backend prepares for one launch: the request for the child and the supervisor's ends
// of the channels to it.
#pragma once

#include <filesystem>

#include "supervisor/launch.hpp"

namespace crosvisor {

struct VmmLaunch {
  LaunchRequest request;
  UniqueFd console;                      // read end of the guest's serial console
  UniqueFd vmm_output;                   // read end of the VMM's own stdout and stderr
  std::filesystem::path control_socket;  // where the VMM's control channel (QMP) listens
};

// Opens a file the VMM will read through an inherited fd; the error names the role and path.
Expected<UniqueFd> open_for_vmm(const std::filesystem::path& path, std::string_view role);
// A close-on-exec pipe: {read end, write end}.
Expected<std::pair<UniqueFd, UniqueFd>> make_pipe();
// A listening Unix stream socket bound at `path` (any stale file there is replaced).
Expected<UniqueFd> listen_unix(const std::filesystem::path& path, int type);

}  // namespace crosvisor
