// `vm composite`: build a composite disk from partition images, or inspect one.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace crosvisor::cli {

// Writes OUT and its companion files; prints what it wrote. Returns the exit code.
int create_composite(const std::filesystem::path& out, const std::vector<std::string>& partitions);
int inspect_composite(const std::filesystem::path& file);

}  // namespace crosvisor::cli
