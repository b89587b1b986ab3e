// A VM description on the control socket: the JSON twin of a VM file, in which every file is an
// fd the client opened itself and attached to the message ({"fd": index into the attached fds}).
// The daemon never opens a client's path. Parsing is strict: unknown fields, wrong types, fd
// indexes out of range or used twice, unused fds and fds of the wrong kind are all refused, with
// the JSON path of the problem.
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "core/unique_fd.hpp"
#include "crosvisor/error.hpp"
#include "crosvisor/vm_spec.hpp"

namespace crosvisor::protocol {

// Client side: the spec's files opened with the access each use needs (read-write for writable
// disks and partitions), and the JSON naming them by index. The spec's vmm_binary is not sent:
// a daemon runs the VMM binaries it was configured with.
struct SpecMessage {
  nlohmann::json vm;
  std::vector<UniqueFd> fds;
};
Expected<SpecMessage> spec_to_message(const VmSpec& spec);

// Daemon side: the spec, owning the received fds (VmSpec::hand_over). Consumes `fds`: whatever
// happens, every received fd is either in the spec or closed when this returns.
Expected<VmSpec> spec_from_message(const nlohmann::json& vm, std::vector<UniqueFd> fds);

}  // namespace crosvisor::protocol
