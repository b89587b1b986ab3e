// Boot to ready through the service: the test guest booted by UEFI firmware (OVMF on q35, the
// guest a unified kernel image on the ESP of a composite disk) against the same guest booted
// directly as a kernel (microvm), with the same disk, command line and QEMU, in the same run.
// Rounds alternate the two, so that a busy machine slows both alike. Reported: the median time
// from create to ready of each, and their ratio.
#include <algorithm>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <chrono>
#include <cstdio>
#include <vector>

#include "bench/bench.hpp"
#include "bench/stand_in.hpp"
#include "crosvisor/messages.hpp"
#include "crosvisor/service.hpp"

namespace crosvisor::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kGuestReady = "crosvisor-guest: ready";
constexpr const char* kOvmfCode = "/usr/share/OVMF/OVMF_CODE_4M.fd";
constexpr const char* kOvmfVars = "/usr/share/OVMF/OVMF_VARS_4M.fd";

VmSpec boot_spec(const Options& options, bool firmware, int round) {
  VmSpec spec;
  spec.name = std::string(firmware ? "uefi-" : "kernel-") + std::to_string(round);
  spec.accel = "tcg";
  spec.debug = DebugLevel::full;
  spec.ready = ConsoleReady{kGuestReady};
  spec.disks.push_back(
      CompositeDisk{{{"esp", options.guest_dir / "esp.img", false, PartitionType::esp},
                     {"data", options.guest_dir / "data.img", false}}});
  if (firmware) {
    spec.bootloader = kOvmfCode;
    spec.nvram_template = kOvmfVars;
  } else {
    // What the unified kernel image holds: the same kernel, initramfs and command line.
    spec.kernel = options.guest_dir / "vmlinuz";
    spec.initrd = options.guest_dir / "initramfs.cpio.gz";
    spec.params = "console=ttyS0 reboot=t panic=-1 cv.show_disks=1";
  }
  return spec;
}

// Seconds from create to ready; the VM is stopped after.
double boot_once(caf::actor_system& system, const ServiceActor& service, VmSpec spec) {
  caf::scoped_actor self{system};
  VmHandle handle;
  const auto start = Clock::now();
  self->request(service, caf::infinite, create_atom::value, std::move(spec),
                caf::actor_cast<caf::actor>(self))
      .receive([&](VmHandle created) { handle = created; },
               [&](caf::error& error) { throw std::runtime_error(system.render(error)); });
  for (bool ready = false; !ready;) {
    self->receive(
        [&](const VmEvent& event) {
          if (event.state == VmState::ready)
            ready = true;
          if (event.state == VmState::dead)
            throw std::runtime_error(event.vm + " died: " + event.detail);
        },
        [](const ConsoleText&) {},
        caf::after(std::chrono::seconds(300)) >> [] { throw std::runtime_error("no ready"); });
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  self->send(handle, stop_atom::value, kill_atom::value);
  for (bool dead = false; !dead;) {
    self->receive([&](const VmEvent& event) { dead = event.state == VmState::dead; },
                  [](const ConsoleText&) {});
  }
  return seconds;
}

}  // namespace

int boot_scenario(const Options& options) {
  if (!std::filesystem::exists(options.guest_dir / "esp.img")) {
    std::fprintf(stderr, "boot: no test guest in %s (guest/build)\n", options.guest_dir.c_str());
    return 1;
  }
  QuietLogs quiet;
  std::filesystem::create_directories(options.work_dir);
  caf::actor_system_config config;
  caf::actor_system system{config};
  auto service = spawn_service(system, make_service_options(options.work_dir / "boot"));
  const int rounds = options.quick ? 1 : 5;
  std::vector<double> kernel;
  std::vector<double> firmware;
  for (int round = 0; round < rounds; ++round) {
    kernel.push_back(boot_once(system, service, boot_spec(options, false, round)));
    firmware.push_back(boot_once(system, service, boot_spec(options, true, round)));
  }
  caf::anon_send_exit(service, caf::exit_reason::user_shutdown);
  std::printf("boot to ready under TCG, median of %d (the same guest, disk and QEMU):\n", rounds);
  std::printf("  direct kernel boot (microvm, baseline)  %6.2f s\n", median(kernel));
  std::printf("  UEFI firmware boot (OVMF, q35, UKI)     %6.2f s   ratio %.2f\n", median(firmware),
              median(firmware) / median(kernel));
  return 0;
}

}  // namespace crosvisor::bench
