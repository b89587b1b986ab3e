#include "vmm/crosvm/crosvm_backend.hpp"

#include <sys/socket.h>

#include <algorithm>

#include "vmm/crosvm/crosvm_features.hpp"
#include "vmm/disk_attach.hpp"

namespace crosvisor::vmm::crosvm {

Expected<VmmLaunch> prepare(const VmSpec& spec, const LaunchContext& context) {
  VmmLaunch launch;
  process::LaunchRequest& request = launch.request;
  request.binary = binary_for(spec, kDefaultBinary);
  const bool composite = std::any_of(spec.disks.begin(), spec.disks.end(), [](const auto& disk) {
    return std::holds_alternative<CompositeDisk>(disk);
  });
  if (composite) {
    auto supported = supports_composite_disks(request.binary);
    if (supported && !*supported) {
      return make_error(ErrorKind::launch,
                        request.binary.string() +
                            " was built without crosvm's composite-disk feature (`crosvm "
                            "create_composite --help` exits 35): it would give the guest a disk "
                            "of a few hundred bytes. Build crosvm with `cargo build --features "
                            "composite-disk` (or all-x86_64)");
    }
  }
  auto& args = request.args;
  // Global flags come before the subcommand. Logs go to stderr (our pipe), never to syslog.
  // --disable-sandbox: the minijail sandbox needs a pivot root that a user-run supervisor does
  // not have; AVF passes it too.
  args = {"--extended-status",
          "--no-syslog",
          "run",
          "--disable-sandbox",
          "--name",
          spec.name,
          "--mem",
          std::to_string(spec.memory_mib),
          "--cpus",
          std::to_string(spec.cpus)};

  auto boot = plan_boot_files(spec, request.fds);
  if (!boot)
    return std::unexpected(boot.error());
  // A bootloader is crosvm's --bios (AVF), the kernel its last positional argument.
  if (boot->bootloader)
    args.insert(args.end(), {"--bios", process::FdPlan::proc_path(*boot->bootloader)});
  if (boot->initrd)
    args.insert(args.end(), {"--initrd", process::FdPlan::proc_path(*boot->initrd)});
  // crosvm splits every argv token that begins with '-' and holds '=' before parsing it, values
  // included: a command line such as "-v root=/dev/vda" would become two tokens. A leading space
  // keeps it one; the kernel ignores it.
  if (!spec.params.empty())
    args.insert(args.end(), {"--params", (spec.params.front() == '-' ? " " : "") + spec.params});
  if (context.cid != 0)
    args.insert(args.end(), {"--vsock", "cid=" + std::to_string(context.cid)});

  // AVF hands crosvm its network the same way: `--net tap-fd=N` (the MAC quoted: its colons).
  auto taps = plan_taps(context, request.fds);
  if (!taps)
    return std::unexpected(taps.error());
  for (std::size_t i = 0; i < taps->size(); ++i) {
    args.insert(args.end(), {"--net", "tap-fd=" + std::to_string((*taps)[i]) + ",mac=\"" +
                                          to_string(context.nics[i].mac) + "\""});
  }
  for (std::size_t i = 0; i < spec.disks.size(); ++i) {
    auto disk_args = crosvm_disk_args(spec.disks[i], i, context.run_dir, request.fds);
    if (!disk_args)
      return std::unexpected(disk_args.error());
    args.insert(args.end(), disk_args->begin(), disk_args->end());
  }

  auto console = plan_console(launch, context);
  if (!console)
    return std::unexpected(console.error());
  std::string serial = "type=file,path=" + process::FdPlan::proc_path(*console);
  if (spec.debug == DebugLevel::full) {
    // A debuggable VM's console takes input: crosvm reads it from this pipe (AVF's consoleInFd).
    auto input = plan_console_input(launch, context);
    if (!input)
      return std::unexpected(input.error());
    serial += ",input=" + process::FdPlan::proc_path(*input);
  }
  args.insert(args.end(), {"--serial", serial + ",hardware=serial,num=1,console"});

  // crosvm accepts /proc/self/fd/N as --socket only when N is already a listening
  // SOCK_SEQPACKET socket; the path stays ours to remove (it is in the run directory).
  launch.control = {ControlProtocol::crosvm, context.run_dir / "crosvm.sock"};
  auto control = listen_unix(launch.control.socket, SOCK_SEQPACKET);
  if (!control)
    return std::unexpected(control.error());
  args.insert(args.end(),
              {"--socket", process::FdPlan::proc_path(request.fds.add(std::move(*control)))});

  // The kernel is the positional argument, last.
  if (boot->kernel)
    args.push_back(process::FdPlan::proc_path(*boot->kernel));

  if (auto streams = plan_standard_streams(launch, context); !streams)
    return std::unexpected(streams.error());
  return launch;
}

}  // namespace crosvisor::vmm::crosvm
