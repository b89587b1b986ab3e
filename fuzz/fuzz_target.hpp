// A fuzz target's entry point, built two ways. With libFuzzer (clang, scripts/fuzz) it becomes
// LLVMFuzzerTestOneInput of that target's own executable. In the ordinary build every target is
// linked into `fuzz-replay`, which runs the inputs kept in the tree (the seed corpus and every
// input that once crashed) through it as a test of the ordinary suite.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace crosvisor::fuzz {

using Target = int (*)(const std::uint8_t* data, std::size_t size);

// Replay build: remembers `target` under `name` for fuzz-replay; returns true.
bool register_target(std::string_view name, Target target);

// A property the target checks beyond "no crash": its violation is a finding like a crash.
void require(bool holds, std::string_view what);

}  // namespace crosvisor::fuzz

#ifdef CROSVISOR_LIBFUZZER
#define CROSVISOR_FUZZ_TARGET(name, function)                                         \
  extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) { \
    return function(data, size);                                                      \
  }
#else
#define CROSVISOR_FUZZ_TARGET(name, function)                \
  [[maybe_unused]] static const bool registered_##function = \
      ::crosvisor::fuzz::register_target(name, function);
#endif
