#include <cstdio>
#include <cstdlib>

#include "fuzz/fuzz_target.hpp"

namespace crosvisor::fuzz {

void require(bool holds, std::string_view what) {
  if (holds)
    return;
  std::fprintf(stderr, "fuzz: property violated: %.*s\n", static_cast<int>(what.size()),
               what.data());
  std::abort();  // libFuzzer keeps the input as a crash; fuzz-replay's test fails
}

}  // namespace crosvisor::fuzz
