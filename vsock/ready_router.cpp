#include "vsock/ready_router.hpp"

namespace crosvisor::vsock {

void ReadyRouter::expect(std::uint32_t port, std::uint32_t cid, Waiter waiter) {
  forget(waiter);
  by_port_and_cid_[{port, cid}] = waiter;
  keys_[waiter] = {port, cid};
}

std::optional<ReadyRouter::Waiter> ReadyRouter::arrived(std::uint32_t port,
                                                        std::uint32_t peer_cid) {
  auto it = by_port_and_cid_.find({port, peer_cid});
  if (it == by_port_and_cid_.end())
    return std::nullopt;  // not a VM we wait for: refuse it
  const Waiter waiter = it->second;
  keys_.erase(waiter);
  by_port_and_cid_.erase(it);
  return waiter;
}

void ReadyRouter::forget(Waiter waiter) {
  auto it = keys_.find(waiter);
  if (it == keys_.end())
    return;
  by_port_and_cid_.erase(it->second);
  keys_.erase(it);
}

bool ReadyRouter::listening_needed(std::uint32_t port) const {
  auto it = by_port_and_cid_.lower_bound({port, 0});
  return it != by_port_and_cid_.end() && it->first.first == port;
}

}  // namespace crosvisor::vsock
