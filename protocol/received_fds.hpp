// The fds that came with a message, on the daemon's side: each checked to be a file of the kind
// its use needs (a regular file or block device, open for the access the use needs, never an
// O_PATH fd), handed to the specs that name it, and refused when nothing names it. In a fleet
// message a read-only file may be named by several VMs (replicas share a kernel); a writable one
// only ever by one.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/unique_fd.hpp"
#include "crosvisor/error.hpp"
#include "crosvisor/vm_spec.hpp"
#include "protocol/field_reader.hpp"

namespace crosvisor::protocol {

class FdTaker {
 public:
  FdTaker(std::vector<UniqueFd> fds, bool shared) : shared_(shared) {
    for (auto& fd : fds)
      slots_.push_back(Slot{std::move(fd), nullptr, 0, false});
  }

  // The fd an {"fd": N} object names, checked to be a file of the kind the use needs, handed
  // over to `spec`; returns the path the spec uses for it.
  Expected<std::filesystem::path> take(const nlohmann::json& reference, const std::string& where,
                                       bool block_device_ok, bool writable, VmSpec& spec);

  Expected<void> all_used() const {
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].uses == 0)
        return std::unexpected(
            bad("vm", "fd " + std::to_string(i) + " came with the message but nothing names it"));
    }
    return {};
  }

 private:
  struct Slot {
    UniqueFd fd;
    std::shared_ptr<const int> owner;
    int uses = 0;
    bool writable = false;
  };
  static constexpr std::size_t kMaxIndex = 1024;
  bool shared_;
  std::vector<Slot> slots_;
};

}  // namespace crosvisor::protocol
