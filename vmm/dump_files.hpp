// Memory dumps of debuggable VMs: <dir>/NAME-YYYYmmddTHHMMSS[.N].core, each owned by the VM's
// owner, and at most `keep` per VM name, the oldest removed first, so that a guest in a crash
// loop cannot fill the disk. Plain file work: run it on the reactor thread, never in a handler.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/unique_fd.hpp"
#include "crosvisor/error.hpp"

namespace crosvisor::vmm {

struct DumpFile {
  UniqueFd fd;  // open for writing, empty
  std::filesystem::path path;
};

// Makes room (the oldest dumps of `vm` beyond keep - 1 go) and creates the next dump file.
Expected<DumpFile> create_dump_file(const std::filesystem::path& dir, const std::string& vm,
                                    std::optional<uid_t> owner, std::size_t keep,
                                    std::chrono::system_clock::time_point now);

// The dumps of `vm` in `dir`, oldest first.
std::vector<std::filesystem::path> dumps_of(const std::filesystem::path& dir,
                                            const std::string& vm);

}  // namespace crosvisor::vmm
