// The fds a VMM child inherits, each at a planned number. The argv and any descriptor files name
// them as /proc/self/fd/N; at launch the child gets exactly these fds at these numbers.
#pragma once

#include <string>
#include <vector>

#include "core/unique_fd.hpp"

namespace crosvisor::process {

class FdPlan {
 public:
  struct Entry {
    int target;       // the number the child sees
    UniqueFd source;  // the supervisor's descriptor, duplicated onto `target` in the child
  };

  // Places `fd` at the next free number from 3 on and returns that number.
  int add(UniqueFd fd);
  // Places `fd` at a fixed number (0, 1, 2 for the standard streams). Replaces an earlier entry.
  void set(int target, UniqueFd fd);

  const std::vector<Entry>& entries() const { return entries_; }
  int highest_target() const;

  static std::string proc_path(int target) { return "/proc/self/fd/" + std::to_string(target); }

 private:
  std::vector<Entry> entries_;
  int next_target_ = 3;
};

}  // namespace crosvisor::process
