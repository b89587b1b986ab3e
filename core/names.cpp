// Names of the public enums, as they appear in VM files, CLI output, logs and JSON: one table per
// enum serves both directions, and an unknown name is an error wherever it is read.
#include <algorithm>
#include <array>
#include <string>
#include <utility>
#include <vector>

#include "crosvisor/vm_spec.hpp"
#include "crosvisor/vm_state.hpp"

namespace crosvisor {
namespace {

template <class Enum, std::size_t N>
using Names = std::array<std::pair<Enum, std::string_view>, N>;

constexpr Names<VmmKind, 2> kVmmKinds{{{VmmKind::qemu, "qemu"}, {VmmKind::crosvm, "crosvm"}}};
constexpr Names<DebugLevel, 2> kDebugLevels{
    {{DebugLevel::full, "full"}, {DebugLevel::none, "none"}}};
constexpr Names<PartitionType, 2> kPartitionTypes{
    {{PartitionType::linux_data, "linux"}, {PartitionType::esp, "esp"}}};
constexpr Names<VmState, 6> kVmStates{{{VmState::created, "created"},
                                       {VmState::starting, "starting"},
                                       {VmState::running, "running"},
                                       {VmState::ready, "ready"},
                                       {VmState::stopping, "stopping"},
                                       {VmState::dead, "dead"}}};
constexpr Names<DeathReason, 11> kDeathReasons{{{DeathReason::shutdown, "SHUTDOWN"},
                                                {DeathReason::start_failed, "START_FAILED"},
                                                {DeathReason::reboot, "REBOOT"},
                                                {DeathReason::crash, "CRASH"},
                                                {DeathReason::guest_panic, "GUEST_PANIC"},
                                                {DeathReason::watchdog_reboot, "WATCHDOG_REBOOT"},
                                                {DeathReason::killed, "KILLED"},
                                                {DeathReason::error, "ERROR"},
                                                {DeathReason::unknown, "UNKNOWN"},
                                                {DeathReason::hangup, "HANGUP"},
                                                {DeathReason::out_of_memory, "OUT_OF_MEMORY"}}};

template <class Enum, std::size_t N>
std::string_view name_in(const Names<Enum, N>& names, Enum value) {
  for (const auto& [entry, name] : names) {
    if (entry == value)
      return name;
  }
  return "?";
}

template <class Enum, std::size_t N>
std::optional<Enum> value_in(const Names<Enum, N>& names, std::string_view name) {
  for (const auto& [entry, entry_name] : names) {
    if (entry_name == name)
      return entry;
  }
  return std::nullopt;
}

template <class Enum, std::size_t N>
std::vector<std::string_view> names_of(const Names<Enum, N>& names) {
  std::vector<std::string_view> all;
  for (const auto& [entry, name] : names)
    all.push_back(name);
  return all;
}

}  // namespace

std::vector<std::string_view> vmm_kind_names() {
  return names_of(kVmmKinds);
}
std::vector<std::string_view> debug_level_names() {
  return names_of(kDebugLevels);
}

std::string_view to_string(VmmKind kind) {
  return name_in(kVmmKinds, kind);
}
std::string_view to_string(DebugLevel level) {
  return name_in(kDebugLevels, level);
}
std::string_view to_string(PartitionType type) {
  return name_in(kPartitionTypes, type);
}
std::optional<PartitionType> partition_type_named(std::string_view name) {
  return value_in(kPartitionTypes, name);
}
std::vector<std::string_view> partition_type_names() {
  return names_of(kPartitionTypes);
}
std::string_view to_string(VmState state) {
  return name_in(kVmStates, state);
}
std::string_view to_string(DeathReason reason) {
  return name_in(kDeathReasons, reason);
}
std::optional<VmmKind> vmm_kind_named(std::string_view name) {
  return value_in(kVmmKinds, name);
}
std::optional<DebugLevel> debug_level_named(std::string_view name) {
  return value_in(kDebugLevels, name);
}
std::optional<VmState> vm_state_named(std::string_view name) {
  return value_in(kVmStates, name);
}
std::optional<DeathReason> death_reason_named(std::string_view name) {
  return value_in(kDeathReasons, name);
}

std::optional<std::string> kernel_params_problem(std::string_view params) {
  if (params.size() > kMaxKernelParams)
    return "the kernel command line is " + std::to_string(params.size()) +
           " bytes; the kernel takes at most " + std::to_string(kMaxKernelParams);
  for (std::size_t i = 0; i < params.size(); ++i) {
    const auto c = static_cast<unsigned char>(params[i]);
    if (c < 0x20 || c > 0x7e)
      return "the kernel command line must be printable ASCII; byte " + std::to_string(i) +
             " is 0x" + "0123456789abcdef"[c >> 4] + "0123456789abcdef"[c & 15];
  }
  return std::nullopt;
}

bool is_valid_vm_name(std::string_view name) {
  if (name.empty() || name.size() > 64)
    return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    if (!ok)
      return false;
  }
  const bool all_digits =
      std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; });
  return name.front() != '.' && name.front() != '-' && !all_digits;
}

}  // namespace crosvisor
