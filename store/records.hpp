// What the state store keeps: a daemon-owned fleet's definition, and each of its running VMs'
// facts, enough for the next crosvisord to recognise the VMM process and take it over.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "crosvisor/error.hpp"

namespace crosvisor::store {

struct FleetRecord {
  std::string name;
  // Who brought it up: its files are reopened with this user's rights (and the user's groups as
  // the system says when they are reopened), never with the daemon's.
  std::uint32_t owner_uid = 0;
  std::uint32_t owner_gid = 0;
  // Comes up again when the daemon starts after the host rebooted (virsh autostart).
  bool persistent = false;
  // The host boot (/proc/sys/kernel/random/boot_id) the fleet last ran in: another one means
  // the host rebooted and none of its VMMs can still run.
  std::string boot_id;
  std::int64_t created_at_ms = 0;
  // The fleet as it came on the control socket (protocol/fleet_json), each file as {"fd", "path"}:
  // decoded and checked again by the same code when the record is read back.
  nlohmann::json fleet;
};

// An interface of such a VM: its network, address and MAC, and its TAP's name there.
struct VmNic {
  std::string network;
  std::string address;
  std::string mac;
  std::string tap;
};

// The owner of a VM named on crosvisord's command line: the daemon's own, nobody's (uid -1 is
// no user's: setresuid reads it as "unchanged"). Its record is in vms/daemon/.
inline constexpr std::uint32_t kDaemonOwned = static_cast<std::uint32_t>(-1);

// A running VM of a daemon-owned fleet, or named on crosvisord's command line (owner
// kDaemonOwned, no fleet).
struct VmRecord {
  std::string name;
  std::string fleet;
  std::uint32_t owner_uid = 0;
  std::string boot_id;
  // The VMM process: its pid, its start time (clock ticks after boot, /proc/PID/stat field 22)
  // and its arguments, all three checked before it is taken over: a pid alone may have been
  // given to another process since.
  pid_t pid = -1;
  std::uint64_t start_time = 0;
  std::vector<std::string> args;
  std::uint32_t cid = 0;
  std::string vmm;  // "qemu" or "crosvm": how to talk to it
  // Its directory: control socket, console FIFOs, generated files (under the store's run/).
  std::filesystem::path run_dir;
  std::int64_t started_at_ms = 0;
  bool ready = false;
  std::uint32_t restarts = 0;
  // Its fleet's restarts of it within the restart window (unix ms), for the policy's intensity.
  std::vector<std::int64_t> recent_restarts_ms;
  std::vector<VmNic> nics;  // (absent from records of before networks were durable: none)
};

// A network of such a fleet (docs/networks.md), whose namespace outlives the daemon with its
// dnsmasq and its VMs' TAPs. Who has which address is in its directory's dnsmasq files.
struct NetworkRecord {
  std::string name;
  std::string fleet;
  std::uint32_t owner_uid = 0;
  std::string boot_id;
  std::string subnet;  // "10.0.7.0/24"
  bool dns = false;
  std::filesystem::path dir;  // dnsmasq's files and its output FIFO (under the store's run/)
  // Its dnsmasq, identified as a VMM is; pid -1 while none is known to run.
  pid_t dnsmasq_pid = -1;
  std::uint64_t dnsmasq_start_time = 0;
  std::vector<std::string> dnsmasq_args;
};

nlohmann::json to_json(const FleetRecord& record);
nlohmann::json to_json(const VmRecord& record);
nlohmann::json to_json(const NetworkRecord& record);
// Strict: every field present with its type; the error says which is not.
Expected<FleetRecord> fleet_record_from(const nlohmann::json& json);
Expected<VmRecord> vm_record_from(const nlohmann::json& json);
Expected<NetworkRecord> network_record_from(const nlohmann::json& json);

}  // namespace crosvisor::store
