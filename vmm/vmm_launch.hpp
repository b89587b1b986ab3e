// What a VMM backend prepares for one launch: the request for the child and the supervisor's ends
// of the channels to it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <vector>

#include "crosvisor/vm_spec.hpp"
#include "process/cgroups.hpp"
#include "process/launch.hpp"
#include "vmm/confinement.hpp"
#include "vmm/console_log.hpp"
#include "vmm/vmm_control.hpp"

namespace crosvisor::vmm {

struct VmmLaunch {
  process::LaunchRequest request;
  UniqueFd console;                         // read end of the guest's serial console
  UniqueFd console_input;                   // debug = full: what the guest reads on it
  UniqueFd vmm_output;                      // read end of the VMM's own stdout and stderr
  ControlChannel control;                   // how to reach the VMM while it runs
  std::optional<ConsoleLog> console_log;    // where the console is kept (debug = full)
  std::optional<process::VmCgroup> cgroup;  // its cgroup, removed once it is reaped
};

// What the supervisor decided for one launch, beyond the spec.
struct LaunchContext {
  std::filesystem::path run_dir;      // the VM's private directory (sockets, generated files)
  std::uint32_t cid = 0;              // the VM's vsock CID
  std::filesystem::path console_log;  // empty: the console is not kept
  std::uint64_t console_log_max_bytes = 16ull << 20;
  // QEMU UEFI boots: the VM's own variable store (qemu/nvram.hpp), made from its template once.
  std::filesystem::path nvram;
  // The VM's network interfaces, in order (eth0 first): each a TAP of its network, and its MAC.
  struct Nic {
    std::shared_ptr<const UniqueFd> tap;
    MacAddress mac;
  };
  std::vector<Nic> nics;
  // Live restore: the VMM outlives the supervisor, and a successor takes it over. No
  // parent-death signal; its console goes through FIFOs in run_dir (durable_console); it holds a
  // copy of its CID reservation, so that the CID stays its own while no supervisor runs.
  bool durable = false;
  std::shared_ptr<const UniqueFd> cid_reservation;
  // Confined (vmm/confinement.hpp): `confine` is how; prepare_vmm_launch resolves it into
  // `sandbox` (who the VMM runs as, what it sees; its run directory is added and given to it)
  // before the backend plans the VMM.
  std::optional<Confinement> confine;
  std::optional<process::Sandbox> sandbox;
  // Where its cgroup is made (named `cgroup_name`), with the spec's limits; none: it runs
  // unlimited, unless its spec asks for limits (then it fails, saying `cgroups_unavailable`).
  std::shared_ptr<const process::CgroupHost> cgroups;
  std::string cgroup_name;
  std::string cgroups_unavailable;
};

// A durable VM's console: the FIFOs console.out (what the guest prints) and console.in (what it
// reads) in its run directory, which a successor supervisor opens again. The VMM holds each open
// read-write, so that it never sees a broken pipe or the end of its input while no supervisor
// runs: the guest's output waits in console.out (kDurableConsoleBuffer bytes, then the guest's
// serial port waits, as it does for a supervisor that reads slowly).
inline constexpr const char* kConsoleOutFifo = "console.out";
inline constexpr const char* kConsoleInFifo = "console.in";
// The VMM's own stdout and stderr, the same way (its last words explain a death).
inline constexpr const char* kVmmOutputFifo = "vmm.out";
inline constexpr int kDurableConsoleBuffer = 1 << 20;
// The supervisor's ends, non-blocking: reading console.out, writing console.in (made first when
// `create`).
struct DurableConsole {
  UniqueFd out;
  UniqueFd in;
  UniqueFd vmm_output;
};
Expected<DurableConsole> open_durable_console(const std::filesystem::path& run_dir, bool create);
// The supervisor's end of vmm.out alone, made first when `create` (a durable child that is not
// a VMM: a network's dnsmasq).
Expected<UniqueFd> open_durable_output(const std::filesystem::path& run_dir, bool create);
// The VMM's end of one of them (blocking, read-write).
Expected<UniqueFd> open_fifo_for_vmm(const std::filesystem::path& fifo);

// Opens a file the VMM will read through an inherited fd; the error names the role and path.
Expected<UniqueFd> open_for_vmm(const std::filesystem::path& path, std::string_view role);
// A close-on-exec pipe: {read end, write end}.
Expected<std::pair<UniqueFd, UniqueFd>> make_pipe();
// A listening Unix socket of `type` (SOCK_STREAM, SOCK_SEQPACKET) bound at `path` (any stale
// file there is replaced).
Expected<UniqueFd> listen_unix(const std::filesystem::path& path, int type);
// The binary a spec names, else the backend's default name (looked up on PATH at launch).
inline std::filesystem::path binary_for(const VmSpec& spec, const char* default_name) {
  return spec.vmm_binary.empty() ? std::filesystem::path(default_name) : spec.vmm_binary;
}
// A listening TCP socket on 127.0.0.1:`port`, for a stub the VMM serves (gdb): only this host's
// own users can reach it.
Expected<UniqueFd> listen_loopback(std::uint16_t port, std::string_view role);
// stdin from /dev/null; stdout and stderr into one pipe whose read end is launch.vmm_output (a
// durable VM's: the FIFO vmm.out of its run directory).
Expected<void> plan_standard_streams(VmmLaunch& launch, const LaunchContext& context);

// The guest's boot files as inherited fds: the kernel's and the initrd's if it boots a kernel,
// the bootloader's (and its variable store template's, not inherited) if it boots firmware.
struct BootFiles {
  std::optional<int> kernel;
  std::optional<int> initrd;
  std::optional<int> bootloader;
  UniqueFd nvram_template;  // read by the supervisor; the VMM gets its own copy
};
Expected<BootFiles> plan_boot_files(const VmSpec& spec, process::FdPlan& fds);
// The TAPs of `context.nics`, each copied into the plan: their numbers, in order.
Expected<std::vector<int>> plan_taps(const LaunchContext& context, process::FdPlan& fds);
// A pipe for the guest's serial console (a durable VM's console.out): its read end becomes
// launch.console; returns the number the VMM writes to.
Expected<int> plan_console(VmmLaunch& launch, const LaunchContext& context);
// A pipe for what the guest reads on its console (a durable VM's console.in): its write end
// becomes launch.console_input; returns the number the VMM reads from.
Expected<int> plan_console_input(VmmLaunch& launch, const LaunchContext& context);
// One connected stream socket for the guest's console both ways (QEMU's socket chardev): ours
// becomes launch.console and, dup'ed, launch.console_input; returns the VMM's number.
Expected<int> plan_console_socket(VmmLaunch& launch);

}  // namespace crosvisor::vmm
