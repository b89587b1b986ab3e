// The daemon's state directory (--state-dir): daemon-owned fleets and their running VMs, one
// record file each (record_file.hpp), so that a write touches one small file and a damaged record
// costs one fleet or VM, never the store.
//
//   fleets/<uid>/<fleet>.rec     a fleet's definition (FleetRecord)
//   vms/<uid>/<vm>.rec           a running VM of such a fleet (VmRecord)
//   vms/daemon/<vm>.rec          a running VM named on crosvisord's command line
//   networks/<uid>/<network>.rec  a network of such a fleet (NetworkRecord)
//   run/<token>/                 a VM's directory: sockets and console FIFOs that outlive the
//                                daemon process; or a network's: dnsmasq's files
//   quarantine/                  records found damaged, moved aside (and reported) so that they
//                                are reported once and never stop the daemon from starting
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "crosvisor/error.hpp"
#include "store/records.hpp"

namespace crosvisor::store {

struct StoreProblem {
  std::filesystem::path file;  // where it is now (in quarantine/, when it was moved there)
  std::string what;
};

struct LoadedState {
  std::vector<FleetRecord> fleets;
  std::vector<VmRecord> vms;
  std::vector<NetworkRecord> networks;
  std::vector<StoreProblem> problems;
};

class StateStore {
 public:
  explicit StateStore(std::filesystem::path dir) : dir_(std::move(dir)) {}

  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path fleet_file(std::uint32_t owner, const std::string& fleet) const;
  std::filesystem::path vm_file(std::uint32_t owner, const std::string& vm) const;
  std::filesystem::path network_file(std::uint32_t owner, const std::string& network) const;
  // A new directory for a VM's run (mode 0700), named by a token nobody else uses.
  Expected<std::filesystem::path> make_run_dir() const;
  // The name of such a directory, not made yet (the VM's launch makes it).
  std::filesystem::path fresh_run_dir() const;

  Expected<void> save(const FleetRecord& record) const;
  Expected<void> save(const VmRecord& record) const;
  Expected<void> save(const NetworkRecord& record) const;
  Expected<void> remove_fleet(std::uint32_t owner, const std::string& fleet) const;
  Expected<void> remove_vm(std::uint32_t owner, const std::string& vm) const;
  Expected<void> remove_network(std::uint32_t owner, const std::string& network) const;

  // Every record. Temporary files of interrupted writes are removed; a record that cannot be
  // read back is moved to quarantine/ and reported, never thrown.
  LoadedState load() const;
  // Run directories no kept record names (left by VMs and networks that ended while no daemon
  // ran): removed.
  std::size_t remove_unused_run_dirs(const std::vector<VmRecord>& kept,
                                     const std::vector<NetworkRecord>& kept_networks = {}) const;

 private:
  std::filesystem::path dir_;
};

}  // namespace crosvisor::store
