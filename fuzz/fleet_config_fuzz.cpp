// A fleet file (TOML), as `vm fleet up FILE` reads it: any bytes give a FleetSpec or an
// invalid_config error whose message begins with the file's name.
#include <string_view>

#include "config/fleet_config.hpp"
#include "fuzz/fuzz_target.hpp"

namespace {

int fleet_config(const std::uint8_t* data, std::size_t size) {
  using namespace crosvisor;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto fleet = config::parse_fleet(text, "/fuzz/fleet.toml");
  if (!fleet) {
    fuzz::require(fleet.error().kind == ErrorKind::invalid_config,
                  "a fleet file's error is invalid_config");
    fuzz::require(fleet.error().message.starts_with("/fuzz/fleet.toml"),
                  "a fleet file's error names the file first");
  }
  return 0;
}

}  // namespace

CROSVISOR_FUZZ_TARGET("fleet_config", fleet_config)
