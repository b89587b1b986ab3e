// uid 65534 (nobody) as a second user of the machine, for tests of what one user can see or do
// to another: copies of the binaries it may run (the build tree may sit where it cannot look), a
// runtime directory of its own, and commands run as it through setpriv with a clean environment.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include "support/processes.hpp"
#include "support/subprocess.hpp"
#include "support/temp_dir.hpp"

namespace crosvisor::test {

struct OtherUser {
  static constexpr uid_t kUid = 65534;
  TempDir dir;                                      // 0711: nobody may pass through
  std::filesystem::path bin = dir / "bin";          // vm, crosvisord, crosvm (the stand-in)
  std::filesystem::path runtime = dir / "runtime";  // nobody's XDG_RUNTIME_DIR, 0700

  OtherUser();
  ~OtherUser();  // ends every process of nobody's that runs from here

  // The argv that runs `command` as nobody (PATH = bin, XDG_RUNTIME_DIR = runtime unless
  // `with_runtime_dir` is false), with `extra` environment entries.
  std::vector<std::string> as_nobody(const std::vector<std::string>& command,
                                     const std::vector<std::string>& extra = {},
                                     bool with_runtime_dir = true) const;
  // `vm ARGS` as nobody, to the end (stdout and stderr together).
  CommandResult vm(const std::string& args, const std::vector<std::string>& extra = {}) const;
  // A file nobody may read.
  std::filesystem::path write(const std::string& name, const std::string& text) const;
  // A VM file for the crosvm stand-in, found on PATH as `crosvm`; `extra` keys are appended.
  std::string stand_in_toml(const std::string& name, const std::string& params = "",
                            const std::string& extra = "") const;
};

}  // namespace crosvisor::test
