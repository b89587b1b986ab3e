#include "vmm/vmm_backend.hpp"

#include <fcntl.h>

#include "core/debug_policy.hpp"
#include "vmm/confinement.hpp"
#include "vmm/crosvm/crosvm_backend.hpp"
#include "vmm/qemu/qemu_backend.hpp"

namespace crosvisor::vmm {
namespace {

Expected<void> make_private_dir(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return make_error(ErrorKind::io, "create " + dir.string() + ": " + ec.message());
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
  return {};
}

// Its cgroup, with the limits its spec asks for; the VMM joins it before exec.
Expected<void> place_in_cgroup(const VmSpec& spec, const LaunchContext& context,
                               VmmLaunch& launch) {
  process::CgroupLimits limits;
  if (spec.memory_overhead_mib)
    limits.memory_bytes = (std::uint64_t{spec.memory_mib} + *spec.memory_overhead_mib) << 20;
  limits.cpu_percent = spec.cpu_quota_percent;
  limits.pids = spec.pids_max;
  const bool asked = limits.memory_bytes || limits.cpu_percent || limits.pids;
  if (!context.cgroups) {
    if (!asked)
      return {};
    return make_error(ErrorKind::launch,
                      "VM " + spec.name +
                          " asks for resource limits (memory_overhead_mib, cpu_quota_percent, "
                          "pids_max), but crosvisor has no cgroups to give it: " +
                          context.cgroups_unavailable);
  }
  auto cgroup = context.cgroups->make(context.cgroup_name, limits);
  if (!cgroup)
    return std::unexpected(Error{ErrorKind::launch, "cgroup: " + cgroup.error().message});
  launch.request.join_cgroups = cgroup->procs_files();
  launch.cgroup = std::move(*cgroup);
  return {};
}

}  // namespace

Expected<VmmLaunch> prepare_vmm_launch(const VmSpec& spec, const LaunchContext& given) {
  LaunchContext context = given;
  if (given.confine) {
    auto sandbox = confinement_for(spec, *given.confine);
    if (!sandbox)
      return std::unexpected(sandbox.error());
    context.sandbox = std::move(*sandbox);
  }
  // An embedding application's spec reaches here unchecked by config/ and protocol/.
  if (spec.gdb_port) {
    if (auto refused = debug_refusal(spec, DebugFeature::gdb))
      return std::unexpected(*refused);
    if (auto refused = vmm_refusal(spec, DebugFeature::gdb))
      return std::unexpected(*refused);
  }
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
  if (!launch)
    return launch;
  if (context.durable) {
    launch->request.die_with_supervisor = false;
    if (context.cid_reservation && *context.cid_reservation) {
      // The VMM holds its CID's reservation itself: it is named in its environment, so that a
      // strict VMM (the crosvm stand-in) knows the fd is meant, and unused by every VMM.
      UniqueFd copy(::fcntl(context.cid_reservation->get(), F_DUPFD_CLOEXEC, 3));
      if (!copy)
        return std::unexpected(errno_error(ErrorKind::io, "dup the CID reservation", errno));
      const int number = launch->request.fds.add(std::move(copy));
      launch->request.environment.push_back(std::string(kCidReservationVariable) + "=" +
                                            std::to_string(number));
    }
  }
  if (context.sandbox) {
    process::Sandbox sandbox = *context.sandbox;
    sandbox.writable.push_back(context.run_dir);
    if (auto handed = hand_over_run_dir(context.run_dir, sandbox); !handed)
      return std::unexpected(handed.error());
    launch->request.sandbox = std::move(sandbox);
  }
  if (auto placed = place_in_cgroup(spec, context, *launch); !placed)
    return std::unexpected(placed.error());
  if (context.console_log.empty())
    return launch;
  // Each boot is appended after a marker: a restarted VM keeps the lines of the boot before.
  auto log = ConsoleLog::open(context.console_log, context.console_log_max_bytes, spec.owner_uid,
                              boot_marker(spec.name));
  if (!log)
    return std::unexpected(log.error());
  launch->console_log.emplace(std::move(*log));
  return launch;
}

}  // namespace crosvisor::vmm
