// Loads one VM description from TOML. Every problem names the file, line, column and key; unknown
// keys are errors (with a suggestion), so a typo never silently falls back to a default.
#pragma once

#include <toml++/toml.h>

#include <filesystem>
#include <optional>
#include <string_view>

#include "crosvisor/error.hpp"
#include "crosvisor/vm_spec.hpp"

namespace crosvisor::config {

class TableReader;

// Reads a VM's keys from `vm` (any problem goes to its ProblemList) and reports the unknown ones;
// nothing when a problem was found, unless `best_effort` asks for what could be read anyway (a
// fleet file checks its VMs against each other even when one of them has a mistake).
std::optional<VmSpec> read_vm_table(TableReader& vm, bool best_effort = false);

// Parses `text` as if it were the file `source` (used for messages and to resolve relative paths).
Expected<VmSpec> parse_vm_spec(std::string_view text, const std::filesystem::path& source);

// Reads and parses the file at `path`.
Expected<VmSpec> load_vm_file(const std::filesystem::path& path);

// Whether a parsed file is a fleet file ([[vm]], [fleet] or [defaults] at its top): a user who
// gives one where a VM file belongs (or the other way round) is told which command takes it.
bool looks_like_fleet_file(const toml::table& root);

}  // namespace crosvisor::config
