#include "supervisor/vmm_backend.hpp"

#include "supervisor/qemu_backend.hpp"

namespace crosvisor {

Expected<VmmLaunch> prepare_vmm_launch(const VmSpec& spec, const std::filesystem::path& run_dir,
                                       std::uint32_t cid) {
  std::error_code ec;
  std::filesystem::create_directories(run_dir, ec);
  if (ec)
    return make_error(ErrorKind::io, "create " + run_dir.string() + ": " + ec.message());
  std::filesystem::permissions(run_dir, std::filesystem::perms::owner_all, ec);
  switch (spec.vmm) {
    case VmmKind::qemu:
      return qemu::prepare(spec, run_dir, cid);
    case VmmKind::crosvm:
      break;
  }
  // Never start a different VMM than the one asked for.
  return make_error(ErrorKind::launch, "vmm \"" + std::string(to_string(spec.vmm)) +
                                           "\": this build has no backend for it yet");
}

}  // namespace crosvisor
