// crosvm's command line as the stand-in (testing/fake_crosvm) parses it: the input is argv
// without argv[0], its elements separated by NUL bytes. Refusals are invalid_config (exit 35) or
// launch (exit 1), as crosvm's.
#include <string>
#include <vector>

#include "fuzz/fuzz_target.hpp"
#include "testing/fake_crosvm/crosvm_args.hpp"

namespace {

int crosvm_args(const std::uint8_t* data, std::size_t size) {
  using namespace crosvisor;
  std::vector<std::string> args(1);
  for (std::size_t i = 0; i < size; ++i) {
    if (data[i] == '\0')
      args.emplace_back();
    else
      args.back() += static_cast<char>(data[i]);
  }
  auto run = fake_crosvm::parse_crosvm_args(args);
  if (!run) {
    fuzz::require(
        run.error().kind == ErrorKind::invalid_config || run.error().kind == ErrorKind::launch,
        "crosvm's refusals are argh's (35) or the run's (1)");
    return 0;
  }
  for (const int fd : fake_crosvm::named_fds(*run))
    fuzz::require(fd >= 0, "a /proc/self/fd/N path names a non-negative N");
  return 0;
}

}  // namespace

CROSVISOR_FUZZ_TARGET("crosvm_args", crosvm_args)
