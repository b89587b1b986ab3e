#include "vmm/qemu/qemu_backend.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "core/debug_policy.hpp"
#include "vmm/confinement.hpp"
#include "vmm/disk_attach.hpp"
#include "vmm/qemu/nvram.hpp"

namespace crosvisor::vmm::qemu {

std::vector<std::string> accel_args(const std::string& accel) {
  std::vector<std::string> args;
  std::istringstream list(accel);
  std::string one;
  while (std::getline(list, one, ':')) {
    if (one.empty())
      continue;
    args.push_back("-accel");
    args.push_back(one);
  }
  return args;
}

std::string kernel_params(const VmSpec& spec, std::optional<std::uint64_t> tsc_khz) {
  std::string params = spec.params;
  const auto accels = accel_args(spec.accel);
  const bool tcg_only = std::all_of(accels.begin(), accels.end(), [](const std::string& a) {
    return a == "-accel" || a == "tcg";
  });
  if (tcg_only && tsc_khz && params.find("tsc_early_khz=") == std::string::npos) {
    if (!params.empty())
      params += ' ';
    params += "tsc_early_khz=" + std::to_string(*tsc_khz);
  }
  return params;
}

std::optional<std::uint64_t> host_tsc_khz() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("cpu MHz", 0) != 0)
      continue;
    const auto colon = line.find(':');
    if (colon == std::string::npos)
      break;
    try {
      const double mhz = std::stod(line.substr(colon + 1));
      if (mhz > 0)
        return static_cast<std::uint64_t>(mhz * 1000.0 + 0.5);
    } catch (const std::exception&) {
    }
    break;
  }
  return std::nullopt;
}

Expected<VmmLaunch> prepare(const VmSpec& spec, const LaunchContext& context) {
  const auto& run_dir = context.run_dir;
  const std::uint32_t cid = context.cid;
  VmmLaunch launch;
  process::LaunchRequest& request = launch.request;
  request.binary = binary_for(spec, kDefaultBinary);
  auto& args = request.args;
  // A kernel boots on microvm (virtio over MMIO, no firmware to wait for); UEFI firmware on q35,
  // the PC machine OVMF supports, with virtio over PCI. Both keep ACPI (the power button needs it).
  const bool firmware = spec.bootloader.has_value();
  const QemuBus bus = firmware ? QemuBus::pci : QemuBus::mmio;
  // -nodefaults: no devices we did not ask for.
  args = {"-M", firmware ? "q35" : "microvm", "-nodefaults", "-no-user-config", "-display", "none",
          "-no-reboot", "-device", "pvpanic", "-action",
          // A debuggable guest that panics is kept, paused, for its memory dump.
          dumps_on_panic(spec) ? "panic=pause" : "panic=exit-failure", "-name", spec.name, "-m",
          std::to_string(spec.memory_mib), "-smp", std::to_string(spec.cpus)};
  for (auto& arg : accel_args(spec.accel))
    args.push_back(std::move(arg));
  // Confined: under QEMU's own seccomp filter too.
  if (context.sandbox)
    args.insert(args.end(), {"-sandbox", kQemuSeccomp});

  auto boot = plan_boot_files(spec, request.fds);
  if (!boot)
    return std::unexpected(boot.error());
  if (boot->kernel) {
    args.insert(args.end(), {"-kernel", process::FdPlan::proc_path(*boot->kernel)});
    if (boot->initrd)
      args.insert(args.end(), {"-initrd", process::FdPlan::proc_path(*boot->initrd)});
    static const std::optional<std::uint64_t> tsc_khz = host_tsc_khz();
    if (const std::string params = kernel_params(spec, tsc_khz); !params.empty()) {
      args.insert(args.end(), {"-append", params});
    }
  } else if (boot->nvram_template) {
    // UEFI firmware as flash: its code read-only, its variables in the VM's own store.
    auto store = open_nvram(context.nvram, boot->nvram_template.get(), spec.owner_uid);
    if (!store)
      return std::unexpected(store.error());
    // QEMU opens it again through /proc/self/fd, as the VMM's user: a confined VMM's store is
    // given to its user (the VM's own file, written by nothing else).
    if (context.sandbox && ::fchown(store->get(), context.sandbox->uid, context.sandbox->gid) != 0)
      return std::unexpected(
          errno_error(ErrorKind::io, "give " + context.nvram.string() + " to the VMM", errno));
    const int vars = request.fds.add(std::move(*store));
    args.insert(args.end(),
                {"-drive",
                 "if=pflash,format=raw,unit=0,readonly=on,file=" +
                     process::FdPlan::proc_path(*boot->bootloader),
                 "-drive", "if=pflash,format=raw,unit=1,file=" + process::FdPlan::proc_path(vars)});
  } else {
    // A firmware image with nothing to remember (its variables, if any, live in RAM).
    args.insert(args.end(), {"-bios", process::FdPlan::proc_path(*boot->bootloader)});
  }

  if (cid != 0 && access("/dev/vhost-vsock", R_OK | W_OK) == 0) {
    const char* device = firmware ? "vhost-vsock-pci" : "vhost-vsock-device";
    args.insert(args.end(), {"-device", std::string(device) + ",guest-cid=" + std::to_string(cid)});
  }
  auto taps = plan_taps(context, request.fds);
  if (!taps)
    return std::unexpected(taps.error());
  for (std::size_t i = 0; i < taps->size(); ++i) {
    const std::string id = "net" + std::to_string(i);
    args.insert(args.end(),
                {"-netdev", "tap,id=" + id + ",fd=" + std::to_string((*taps)[i]), "-device",
                 std::string(firmware ? "virtio-net-pci" : "virtio-net-device") + ",netdev=" + id +
                     ",mac=" + to_string(context.nics[i].mac)});
  }
  for (std::size_t i = 0; i < spec.disks.size(); ++i) {
    auto disk_args = qemu_disk_args(spec.disks[i], i, run_dir, bus, request.fds);
    if (!disk_args)
      return std::unexpected(disk_args.error());
    args.insert(args.end(), disk_args->begin(), disk_args->end());
  }

  // A debuggable VM's console goes both ways, on a connected socket (QEMU 7.2's file chardev has
  // no input); a production VM's only out, through a pipe. A durable VM's goes through the FIFOs
  // of its run directory, which QEMU's pipe chardev opens itself, read-write (path.in, path.out).
  if (context.durable) {
    auto console = open_durable_console(run_dir, true);
    if (!console)
      return std::unexpected(console.error());
    launch.console = std::move(console->out);
    if (spec.debug == DebugLevel::full)
      launch.console_input = std::move(console->in);
    args.insert(args.end(), {"-chardev", "pipe,id=console,path=" + (run_dir / "console").string(),
                             "-serial", "chardev:console"});
  } else if (spec.debug == DebugLevel::full) {
    auto console = plan_console_socket(launch);
    if (!console)
      return std::unexpected(console.error());
    args.insert(args.end(), {"-chardev", "socket,id=console,fd=" + std::to_string(*console),
                             "-serial", "chardev:console"});
  } else {
    auto console = plan_console(launch, context);
    if (!console)
      return std::unexpected(console.error());
    args.insert(args.end(),
                {"-chardev", "file,id=console,path=" + process::FdPlan::proc_path(*console),
                 "-serial", "chardev:console"});
  }

  if (spec.gdb_port) {
    // Bound here, on loopback: QEMU only serves the stub on the socket it is handed.
    auto gdb = listen_loopback(*spec.gdb_port, "gdb_port");
    if (!gdb)
      return std::unexpected(gdb.error());
    const int gdb_fd = request.fds.add(std::move(*gdb));
    args.insert(args.end(),
                {"-chardev", "socket,id=gdb,fd=" + std::to_string(gdb_fd) + ",server=on,wait=off",
                 "-gdb", "chardev:gdb"});
  }

  launch.control = {ControlProtocol::qmp, run_dir / "qmp.sock"};
  auto qmp = listen_unix(launch.control.socket, SOCK_STREAM);
  if (!qmp)
    return std::unexpected(qmp.error());
  const int qmp_fd = request.fds.add(std::move(*qmp));
  args.insert(args.end(),
              {"-chardev", "socket,id=qmp,fd=" + std::to_string(qmp_fd) + ",server=on,wait=off",
               "-mon", "chardev=qmp,mode=control"});

  if (auto streams = plan_standard_streams(launch, context); !streams)
    return std::unexpected(streams.error());
  return launch;
}

}  // namespace crosvisor::vmm::qemu
