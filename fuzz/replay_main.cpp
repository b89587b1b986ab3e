// fuzz-replay TARGET PATH...: runs every file under each PATH (a file or a directory, read
// recursively) through the fuzz target TARGET, as libFuzzer would run one input.
// fuzz-replay TARGET --tree FUZZ_DIR: the inputs kept in the tree, FUZZ_DIR/corpus/TARGET and
// FUZZ_DIR/regressions/TARGET (when there is one): how the ordinary suite runs it, so that an
// input that once crashed a parser stays a test after its fix, built with the project's compiler.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "fuzz/fuzz_target.hpp"

namespace crosvisor::fuzz {

namespace {
std::map<std::string, Target, std::less<>>& targets() {
  static std::map<std::string, Target, std::less<>> all;
  return all;
}
}  // namespace

bool register_target(std::string_view name, Target target) {
  targets().emplace(std::string(name), target);
  return true;
}

}  // namespace crosvisor::fuzz

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  const auto& targets = crosvisor::fuzz::targets();
  const auto target = argc > 1 ? targets.find(std::string_view(argv[1])) : targets.end();
  if (target == targets.end()) {
    std::fprintf(stderr, "usage: fuzz-replay TARGET PATH...\ntargets:");
    for (const auto& [name, function] : targets)
      std::fprintf(stderr, " %s", name.c_str());
    std::fprintf(stderr, "\n");
    return 2;
  }
  std::vector<fs::path> paths;
  for (int i = 2; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--tree" && i + 1 < argc) {
      const fs::path tree = argv[++i];
      paths.push_back(tree / "corpus" / target->first);
      if (fs::exists(tree / "regressions" / target->first))
        paths.push_back(tree / "regressions" / target->first);
    } else {
      paths.emplace_back(argv[i]);
    }
  }
  std::vector<fs::path> inputs;
  for (const auto& path : paths) {
    if (fs::is_directory(path)) {
      for (const auto& entry : fs::recursive_directory_iterator(path))
        if (entry.is_regular_file())
          inputs.push_back(entry.path());
    } else if (fs::exists(path)) {
      inputs.push_back(path);
    } else {
      std::fprintf(stderr, "fuzz-replay: %s: no such file or directory\n", path.c_str());
      return 2;
    }
  }
  std::sort(inputs.begin(), inputs.end());
  for (const auto& input : inputs) {
    std::ifstream in(input, std::ios::binary);
    const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    std::fprintf(stderr, "%s (%zu bytes)\n", input.c_str(), bytes.size());
    target->second(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  }
  std::printf("fuzz-replay: %s: %zu inputs, no crash\n", argv[1], inputs.size());
  return 0;
}
