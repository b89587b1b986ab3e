// A VM's own UEFI variable store (libvirt's NVRAM): a copy of OVMF's template made the first time
// the VM boots, then used by every later boot of a VM of that name and owner, so that what the
// firmware remembers (boot entries, settings) survives restarts. Plain file work, run on the
// reactor thread as part of a launch.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>

#include "core/unique_fd.hpp"
#include "crosvisor/error.hpp"

namespace crosvisor::vmm::qemu {

// The store at `path`, open for reading and writing: made from `template_fd` (read from its
// start) when there is none, or when it no longer has the template's size (other firmware).
Expected<UniqueFd> open_nvram(const std::filesystem::path& path, int template_fd,
                              std::optional<uid_t> owner);

}  // namespace crosvisor::vmm::qemu
