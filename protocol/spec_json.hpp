// A VM description on the control socket: the JSON twin of a VM file, in which every file is an
// fd the client opened itself and attached to the message ({"fd": index into the attached fds}).
// The daemon never opens a client's path. Parsing is strict: unknown fields, wrong types, fd
// indexes out of range or used twice, unused fds and fds of the wrong kind are all refused, with
// the JSON path of the problem.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/unique_fd.hpp"
#include "crosvisor/error.hpp"
#include "crosvisor/vm_spec.hpp"

namespace crosvisor::protocol {

// Client side: the spec's files opened with the access each use needs (read-write for writable
// disks and partitions) and checked as the launch will check them, and the JSON naming them by
// index (with the path, for messages). A vmm_binary is looked up on the client's PATH and sent
// as an absolute path; only a daemon of the client's own user accepts one.
struct SpecMessage {
  nlohmann::json vm;
  std::vector<UniqueFd> fds;
};
Expected<SpecMessage> spec_to_message(const VmSpec& spec);

// The files of several VMs opened once each, for a fleet message: read-only files named by many
// VMs (a shared kernel) travel as one fd; a writable one is never shared.
class FdCollector {
 public:
  explicit FdCollector(bool share_read_only) : share_read_only_(share_read_only) {}
  // `disk`: a disk or partition image, checked to be raw (disk/image_file.hpp).
  Expected<nlohmann::json> add(const std::filesystem::path& path, bool writable,
                               const std::string& role, bool disk = false);
  std::vector<UniqueFd> fds;

 private:
  Expected<nlohmann::json> open_new(const std::filesystem::path& path, bool writable,
                                    const std::string& role, bool disk);
  bool share_read_only_;
  std::map<std::string, nlohmann::json> read_only_;  // by canonical path: {"fd", "path"}
};
// One VM's description, its files added to `files`.
Expected<nlohmann::json> spec_json(const VmSpec& spec, FdCollector& files);

// Daemon side: the spec, owning the received fds (VmSpec::hand_over). Consumes `fds`: whatever
// happens, every received fd is either in the spec or closed when this returns.
Expected<VmSpec> spec_from_message(const nlohmann::json& vm, std::vector<UniqueFd> fds);

// Daemon side, for a fleet: several VM descriptions sharing one set of fds (a read-only fd may be
// named by several VMs, a writable one by one use only). Errors name the VM's index.
Expected<std::vector<VmSpec>> specs_from_message(const std::vector<const nlohmann::json*>& vms,
                                                 std::vector<UniqueFd> fds);

}  // namespace crosvisor::protocol
