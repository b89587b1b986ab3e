#include "cli/composite_command.hpp"

#include <iostream>

#include "cli/output.hpp"
#include "core/exit_codes.hpp"
#include "disk/composite_files.hpp"

namespace crosvisor::cli {

int create_composite(const std::filesystem::path& out, const std::vector<std::string>& arguments) {
  std::vector<disk::PartitionFile> partitions;
  for (const auto& argument : arguments) {
    auto partition = disk::parse_partition_argument(argument);
    if (!partition) {
      std::cerr << "vm composite: " << partition.error().message << '\n';
      return kExitUsage;
    }
    partitions.push_back(std::move(*partition));
  }
  auto outputs = disk::create_composite_files(out, partitions);
  if (!outputs)
    return report(outputs.error(), "vm composite");
  for (const auto& path : outputs->all())
    std::cout << path.string() << '\n';
  return 0;
}

int inspect_composite(const std::filesystem::path& file) {
  auto text = disk::inspect_composite(file);
  if (!text)
    return report(text.error(), "vm composite");
  std::cout << *text;
  return 0;
}

}  // namespace crosvisor::cli
