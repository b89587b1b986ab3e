// Opening files with another user's rights: a supervisor that reopens a client's files after a
// restart must get exactly what that user could open, never what it could open itself (it may be
// root). A child process drops to the user's uid, gid and supplementary groups (as the system
// says now: a user removed from a group loses the files that group gave), opens each file and
// passes the fds back over a socket; the caller itself opens nothing.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <vector>

#include "core/unique_fd.hpp"
#include "crosvisor/error.hpp"

namespace crosvisor::process {

struct FileToOpen {
  std::filesystem::path path;
  bool writable = false;  // O_RDWR, else O_RDONLY
};

struct Credentials {
  uid_t uid = 0;
  gid_t gid = 0;
};

// One result per file, in order (a file the user cannot open, or that is not a regular file or
// a block device: its error, naming the path and the user). All of them within
// kOpenAsDeadline: a file that hangs its open (a hung network mount) fails, and the helper is
// killed. The outer error: the helper could not run at all. A caller that is not root can only
// open as itself, and is refused anything else.
inline constexpr std::chrono::seconds kOpenAsDeadline{10};
Expected<std::vector<Expected<UniqueFd>>> open_as(Credentials user,
                                                  const std::vector<FileToOpen>& files);

}  // namespace crosvisor::process
