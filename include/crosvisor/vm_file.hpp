// VM descriptions in TOML, as `vm run` reads them (see README.md for the keys). Every problem is
// reported with file, line, column and key, all at once; relative paths are taken from the file's
// directory.
#pragma once

#include <filesystem>

#include "crosvisor/error.hpp"
#include "crosvisor/vm_spec.hpp"

namespace crosvisor {

Expected<VmSpec> load_vm_file(const std::filesystem::path& path);

}  // namespace crosvisor
