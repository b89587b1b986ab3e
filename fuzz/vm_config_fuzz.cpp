// A VM file (TOML) as `vm run FILE` and crosvisord's command line read it: any bytes give a
// VmSpec or an invalid_config error whose message begins with the file's name (file:line:key).
#include <string_view>

#include "config/vm_config.hpp"
#include "fuzz/fuzz_target.hpp"

namespace {

int vm_config(const std::uint8_t* data, std::size_t size) {
  using namespace crosvisor;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto spec = config::parse_vm_spec(text, "/fuzz/vm.toml");
  if (!spec) {
    fuzz::require(spec.error().kind == ErrorKind::invalid_config,
                  "a VM file's error is invalid_config");
    fuzz::require(spec.error().message.starts_with("/fuzz/vm.toml"),
                  "a VM file's error names the file first");
  }
  return 0;
}

}  // namespace

CROSVISOR_FUZZ_TARGET("vm_config", vm_config)
