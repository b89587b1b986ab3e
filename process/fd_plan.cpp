#include "process/fd_plan.hpp"

#include <algorithm>

namespace crosvisor::process {

int FdPlan::add(UniqueFd fd) {
  while (std::any_of(entries_.begin(), entries_.end(),
                     [&](const Entry& e) { return e.target == next_target_; })) {
    ++next_target_;
  }
  const int target = next_target_++;
  entries_.push_back(Entry{target, std::move(fd)});
  return target;
}

void FdPlan::set(int target, UniqueFd fd) {
  auto existing = std::find_if(entries_.begin(), entries_.end(),
                               [&](const Entry& e) { return e.target == target; });
  if (existing != entries_.end()) {
    existing->source = std::move(fd);
  } else {
    entries_.push_back(Entry{target, std::move(fd)});
  }
}

int FdPlan::highest_target() const {
  int highest = 2;
  for (const auto& entry : entries_)
    highest = std::max(highest, entry.target);
  return highest;
}

}  // namespace crosvisor::process
