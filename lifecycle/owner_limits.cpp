#include "lifecycle/owner_limits.hpp"

#include <filesystem>

namespace crosvisor::lifecycle {

std::size_t estimated_fds(const VmSpec& spec) {
  constexpr std::size_t kPerVm = 7;         // pipes, pidfd, control socket, CID, log
  constexpr std::size_t kPerComposite = 5;  // header, footer, filler, descriptor, overlay
  std::size_t composites = 0;
  for (const auto& disk : spec.disks)
    composites += std::holds_alternative<CompositeDisk>(disk);
  return spec.handed_fds.size() + kPerVm + kPerComposite * composites;
}

std::optional<Error> OwnerUsage::admit(std::optional<std::uint32_t> owner, std::size_t fds,
                                       std::size_t open_now) const {
  if (!owner || *owner == 0)
    return std::nullopt;
  const auto it = usage_.find(*owner);
  const Usage usage = it == usage_.end() ? Usage{} : it->second;
  if (limits_.max_vms > 0 && usage.vms >= limits_.max_vms) {
    return Error{ErrorKind::limit, "you have " + std::to_string(usage.vms) +
                                       " VMs in this crosvisord, the most one user may "
                                       "(--max-vms-per-user " +
                                       std::to_string(limits_.max_vms) + ")"};
  }
  if (limits_.max_fds > 0 && usage.fds + fds > limits_.max_fds) {
    return Error{ErrorKind::limit, "this VM would take " + std::to_string(fds) +
                                       " file descriptors of crosvisord and yours hold " +
                                       std::to_string(usage.fds) + " already, of the " +
                                       std::to_string(limits_.max_fds) +
                                       " one user may (--max-fds-per-user)"};
  }
  if (limits_.fd_capacity > 0 && open_now + fds + limits_.fd_reserve > limits_.fd_capacity) {
    return Error{ErrorKind::limit, "crosvisord has " + std::to_string(open_now) + " of its " +
                                       std::to_string(limits_.fd_capacity) +
                                       " file descriptors open, and keeps the last " +
                                       std::to_string(limits_.fd_reserve) +
                                       " for root: try again later"};
  }
  return std::nullopt;
}

void OwnerUsage::add(std::optional<std::uint32_t> owner, std::size_t fds) {
  if (!owner || *owner == 0)
    return;
  auto& usage = usage_[*owner];
  ++usage.vms;
  usage.fds += fds;
}

void OwnerUsage::remove(std::optional<std::uint32_t> owner, std::size_t fds) {
  if (!owner || *owner == 0)
    return;
  auto it = usage_.find(*owner);
  if (it == usage_.end())
    return;
  it->second.vms -= std::min(it->second.vms, std::size_t{1});
  it->second.fds -= std::min(it->second.fds, fds);
  if (it->second.vms == 0)
    usage_.erase(it);
}

std::size_t OwnerUsage::vms(std::uint32_t owner) const {
  auto it = usage_.find(owner);
  return it == usage_.end() ? 0 : it->second.vms;
}

std::size_t OwnerUsage::fds(std::uint32_t owner) const {
  auto it = usage_.find(owner);
  return it == usage_.end() ? 0 : it->second.fds;
}

std::size_t open_fd_count() {
  std::error_code ec;
  std::size_t count = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++count;
  return count;
}

}  // namespace crosvisor::lifecycle
