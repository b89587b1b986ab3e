// A composite disk file (crosvm's "composite_disk\x1d" and its protobuf), as `vm composite
// --inspect`, the fleet's partition listing and the crosvm stand-in read it. What decode accepts
// obeys crosvm's rules: components sorted by distinct offsets, the disk longer than the last.
#include <string_view>

#include "disk/composite.hpp"
#include "fuzz/fuzz_target.hpp"

namespace {

int composite(const std::uint8_t* data, std::size_t size) {
  using namespace crosvisor;
  auto file = disk::decode_composite(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!file)
    return 0;
  fuzz::require(!file->components.empty(), "a composite has components");
  for (std::size_t i = 1; i < file->components.size(); ++i)
    fuzz::require(file->components[i - 1].offset < file->components[i].offset,
                  "components are sorted by distinct offsets");
  fuzz::require(file->length > file->components.back().offset,
                "the disk ends beyond its last component's offset");
  return 0;
}

}  // namespace

CROSVISOR_FUZZ_TARGET("composite", composite)
