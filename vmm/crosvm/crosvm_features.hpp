// What a crosvm binary was built with. Composite disks need the `composite-disk` cargo feature,
// which is not among crosvm's defaults: a crosvm built without it takes a composite file as a raw
// disk of a few hundred bytes and boots a guest that cannot find its disk, without an error. The
// `create_composite` subcommand exists exactly when the feature does, so
// `crosvm create_composite --help` tells (0 with it, 35 without). Asked once per binary (path,
// inode and modification time), on the thread that launches VMMs.
#pragma once

#include <filesystem>

#include "crosvisor/error.hpp"

namespace crosvisor::vmm::crosvm {

// Whether `binary` reads composite disks; an error when it cannot be asked (it does not run).
Expected<bool> supports_composite_disks(const std::filesystem::path& binary);

}  // namespace crosvisor::vmm::crosvm
