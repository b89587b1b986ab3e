// Readiness through a vsock callback (AVF's payload callback): a VM is ready when its guest
// connects to a host port. Connections arrive on one listener per port and are told apart by the
// peer's CID; this class decides which VM, if any, a connection makes ready.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <utility>

namespace crosvisor::vsock {

class ReadyRouter {
 public:
  using Waiter = std::uint64_t;

  // `waiter` becomes ready when the guest with `cid` connects to host port `port`.
  void expect(std::uint32_t port, std::uint32_t cid, Waiter waiter);
  // A guest with `peer_cid` connected to `port`: the waiter it readies (each only once).
  std::optional<Waiter> arrived(std::uint32_t port, std::uint32_t peer_cid);
  void forget(Waiter waiter);
  bool listening_needed(std::uint32_t port) const;

 private:
  std::map<std::pair<std::uint32_t, std::uint32_t>, Waiter> by_port_and_cid_;
  std::map<Waiter, std::pair<std::uint32_t, std::uint32_t>> keys_;
};

}  // namespace crosvisor::vsock
