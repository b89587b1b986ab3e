#include "supervisor/vmm_backend.hpp"

#include <fcntl.h>

#include "supervisor/crosvm_backend.hpp"
#include "supervisor/qemu_backend.hpp"

namespace crosvisor {
namespace {

Expected<void> make_private_dir(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return make_error(ErrorKind::io, "create " + dir.string() + ": " + ec.message());
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
  return {};
}

}  // namespace

Expected<VmmLaunch> prepare_vmm_launch(const VmSpec& spec, const LaunchContext& context) {
  if (auto made = make_private_dir(context.run_dir); !made)
    return std::unexpected(made.error());
  Expected<VmmLaunch> launch = make_error(ErrorKind::launch, "no backend");
  switch (spec.vmm) {
    case VmmKind::qemu:
      launch = qemu::prepare(spec, context);
      break;
    case VmmKind::crosvm:
      launch = crosvm::prepare(spec, context);
      break;
  }
  if (!launch || context.console_log.empty())
    return launch;
  // A new run of a VM with this name starts a new log.
  if (auto made = make_private_dir(context.console_log.parent_path()); !made)
    return std::unexpected(made.error());
  launch->console_log.reset(::open(context.console_log.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600));
  if (!launch->console_log) {
    return std::unexpected(
        errno_error(ErrorKind::io, "console log " + context.console_log.string(), errno));
  }
  return launch;
}

}  // namespace crosvisor
