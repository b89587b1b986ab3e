// What a client asks for: the description of one VM, independent of where it came from (a TOML
// file, the control socket or an embedding application). Plain data; validated by config/.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "crosvisor/network_spec.hpp"

namespace crosvisor {

enum class VmmKind { qemu, crosvm };

// AVF's debug levels: FULL keeps the console and logs, NONE keeps nothing.
enum class DebugLevel { none, full };

// No ready condition: the VM counts as up as soon as it runs.
struct ReadyWhenRunning {
  friend bool operator==(const ReadyWhenRunning&, const ReadyWhenRunning&) = default;
};

// The VM counts as ready when its console prints a line containing this text.
struct ConsoleReady {
  std::string pattern;
  friend bool operator==(const ConsoleReady&, const ConsoleReady&) = default;
};

// A disk image used as it is.
struct RawDisk {
  std::filesystem::path path;
  bool writable = false;
  friend bool operator==(const RawDisk&, const RawDisk&) = default;
};

// What a partition holds, as its GPT type says: Linux data (the default), or an EFI system
// partition that UEFI firmware boots from.
enum class PartitionType { linux_data, esp };

// One partition of a composite disk: the image file, its GPT label and type.
struct CompositePartition {
  std::string label;
  std::filesystem::path path;
  bool writable = false;
  PartitionType type = PartitionType::linux_data;
  friend bool operator==(const CompositePartition&, const CompositePartition&) = default;
};

// A disk assembled at launch from partition images under a generated GPT (AVF's composite disk).
struct CompositeDisk {
  std::vector<CompositePartition> partitions;
  friend bool operator==(const CompositeDisk&, const CompositeDisk&) = default;
};

using DiskSpec = std::variant<RawDisk, CompositeDisk>;

// The VM counts as ready when its guest connects to this host vsock port (AVF's payload
// callback); the connection is told apart by the guest's CID.
struct VsockReady {
  std::uint32_t port = 0;
  friend bool operator==(const VsockReady&, const VsockReady&) = default;
};

// When a VM counts as ready: one condition, or none.
using ReadyCondition = std::variant<ReadyWhenRunning, ConsoleReady, VsockReady>;

// The schema's limits, one definition for VM files, fleet files and the wire.
namespace limits {
inline constexpr std::uint32_t kMinMemoryMib = 16;
inline constexpr std::uint32_t kMaxMemoryMib = 1u << 20;  // 1 TiB
inline constexpr std::uint32_t kMinCpus = 1;
inline constexpr std::uint32_t kMaxCpus = 256;
inline constexpr std::chrono::milliseconds kMaxStopTimeout{3'600'000};  // an hour
inline constexpr std::chrono::milliseconds kMinReadyTimeout{100};
inline constexpr std::chrono::milliseconds kMaxReadyTimeout{86'400'000};  // a day
// A VM with a ready condition that gives no timeout has this long to become ready, counted from
// its VMM's start: generous, because guests under software emulation (TCG) boot 10-50 times
// slower than under KVM. AVF gives a payload 30 s (300 s when nested).
inline constexpr std::chrono::milliseconds kDefaultReadyTimeout{120'000};
// vsock CIDs a VM may be given: 0, 1 and 2 are the hypervisor, loopback and host, and
// 0xffffffff is VMADDR_CID_ANY.
inline constexpr std::uint32_t kMinCid = 3;
inline constexpr std::uint32_t kMaxCid = 0xfffffffe;
// Host vsock ports a guest may call back on (0xffffffff is VMADDR_PORT_ANY).
inline constexpr std::uint32_t kMinVsockPort = 1;
inline constexpr std::uint32_t kMaxVsockPort = 0xfffffffe;
// TCP ports a gdb stub may take: not the privileged ones.
inline constexpr std::uint16_t kMinGdbPort = 1024;
inline constexpr std::uint16_t kMaxGdbPort = 65535;
// Resource limits of a VMM's cgroup (docs/sandbox.md).
inline constexpr std::uint32_t kMaxMemoryOverheadMib = 1u << 16;
inline constexpr std::uint32_t kMinCpuQuotaPercent = 1;
inline constexpr std::uint32_t kMaxCpuQuotaPercent = kMaxCpus * 100;
inline constexpr std::uint32_t kMinPidsMax = 1;
inline constexpr std::uint32_t kMaxPidsMax = 1u << 16;
}  // namespace limits

struct VmSpec {
  std::string name;
  VmmKind vmm = VmmKind::qemu;
  // How the VM boots: a kernel (with an optional initrd and a command line), or firmware that
  // finds its kernel on a disk (AVF's bootloader; crosvm --bios, QEMU UEFI): exactly one of
  // `kernel` and `bootloader` (boot_problem() says what is wrong).
  std::filesystem::path kernel;
  std::optional<std::filesystem::path> initrd;
  std::string params;
  std::optional<std::filesystem::path> bootloader;
  // QEMU UEFI firmware: the variable store each VM starts its own copy from (OVMF_VARS); by
  // default the bootloader's sibling with VARS for CODE in its name. Without one, QEMU runs the
  // firmware as a plain -bios image and its variables do not persist.
  std::optional<std::filesystem::path> nvram_template;
  std::uint32_t memory_mib = 256;
  std::uint32_t cpus = 1;
  // Limits of its VMM's cgroup (docs/sandbox.md); a VM that has one fails to start where
  // crosvisor has no cgroups to give it. Memory: memory_mib and this overhead for the VMM itself.
  std::optional<std::uint32_t> memory_overhead_mib;
  std::optional<std::uint32_t> cpu_quota_percent;  // of one CPU: 150 is one and a half
  std::optional<std::uint32_t> pids_max;           // the VMM's processes and threads
  DebugLevel debug = DebugLevel::none;
  ReadyCondition ready;
  // A fixed vsock CID; by default the CID registry grants one.
  std::optional<std::uint32_t> cid;
  // debug = full: a gdb stub for the guest on 127.0.0.1 at this TCP port.
  std::optional<std::uint16_t> gdb_port;
  // Attached in order: the first is the guest's vda.
  std::vector<DiskSpec> disks;
  // The networks it joins, in order: the first is the guest's eth0 (docs/networks.md).
  std::vector<NicSpec> nics;
  // QEMU accelerator ("kvm", "tcg", or a fallback list such as "kvm:tcg").
  std::string accel = "kvm:tcg";
  // How long a graceful stop (ACPI power button) may take before the VMM is terminated.
  std::chrono::milliseconds stop_timeout{10'000};
  // How long the VM may take from its VMM's start to ready before it is killed and dies HANGUP;
  // only with a ready condition (nothing: limits::kDefaultReadyTimeout).
  std::optional<std::chrono::milliseconds> ready_timeout;
  // The VMM binary; empty means the default name looked up on PATH.
  std::filesystem::path vmm_binary;
  // Who asked for the VM: crosvisord puts its client's uid here, and lets only that user (and
  // root) see and control the VM. Empty for VMs of an embedding application.
  std::optional<std::uint32_t> owner_uid;
  // Files the client opened itself and handed over (see hand_over); kept open while any copy of
  // this spec lives.
  std::vector<std::shared_ptr<const int>> handed_fds;
  // How the client named each handed file (/proc/self/fd/N -> its own path), for messages and
  // `vm info` only: the supervisor never opens these paths.
  std::map<std::string, std::string> shown_paths;
  // The fleet this VM belongs to, if any.
  std::string fleet;

  // `path` as the client knows it: its own name for a handed file, else the path itself.
  std::string shown(const std::filesystem::path& path) const;
  // `text` with every handed file's /proc/self/fd/N replaced by the client's name for it.
  std::string shown_in(std::string text) const;

  // Takes ownership of `fd`, a file the client opened with its own rights, and returns the path
  // to use for it in this spec (kernel, initrd, a disk or a partition): /proc/self/fd/N. The
  // supervisor then uses that fd as it is, with its access mode, and never opens a path of the
  // client's.
  std::filesystem::path hand_over(int fd);

  friend bool operator==(const VmSpec&, const VmSpec&) = default;
};

// Whether the VM has a ready condition (a console pattern or a vsock callback).
inline bool has_ready_condition(const VmSpec& spec) {
  return !std::holds_alternative<ReadyWhenRunning>(spec.ready);
}
// How long the VM may take to become ready, if it has a ready condition.
inline std::optional<std::chrono::milliseconds> ready_deadline(const VmSpec& spec) {
  if (!has_ready_condition(spec))
    return std::nullopt;
  return spec.ready_timeout.value_or(limits::kDefaultReadyTimeout);
}

// What is wrong with how `spec` boots, if anything: neither or both of kernel and bootloader;
// initrd or params without a kernel; an nvram_template without a bootloader. The key to blame
// first, and why.
struct BootProblem {
  const char* key;
  std::string why;
};
std::optional<BootProblem> boot_problem(const VmSpec& spec);
// The OVMF variable store that goes with a firmware code image, by Debian's and edk2's naming
// (OVMF_CODE_4M.fd -> OVMF_VARS_4M.fd), when `bootloader`'s name says CODE.
std::optional<std::filesystem::path> sibling_nvram_template(
    const std::filesystem::path& bootloader);

// 1-64 letters, digits, '-', '_' or '.', not starting with '-' or '.', and not all digits (a
// number names a CID where a VM is asked for by name or CID). A VM's name is also the
// name of its console log file. Fleets are named by the same rule.
bool is_valid_vm_name(std::string_view name);
// The guest kernel command line: printable ASCII, at most 2047 bytes (x86's COMMAND_LINE_SIZE is
// 2048 with its terminating NUL). The reason a command line is not one, if it is not.
inline constexpr std::size_t kMaxKernelParams = 2047;
std::optional<std::string> kernel_params_problem(std::string_view params);

inline constexpr const char* kVmNameRule =
    "1-64 letters, digits, '-', '_' or '.', not starting with '-' or '.', not all digits";

std::string_view to_string(VmmKind kind);
std::string_view to_string(DebugLevel level);
// The reverse; nothing for a name that is not one.
std::optional<VmmKind> vmm_kind_named(std::string_view name);
std::optional<DebugLevel> debug_level_named(std::string_view name);
std::string_view to_string(PartitionType type);
std::optional<PartitionType> partition_type_named(std::string_view name);
std::vector<std::string_view> partition_type_names();
// Every name, in order: what a VM file or a command line may say.
std::vector<std::string_view> vmm_kind_names();
std::vector<std::string_view> debug_level_names();

}  // namespace crosvisor
