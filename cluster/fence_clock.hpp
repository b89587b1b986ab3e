// When a host must have stopped its cluster VMs (docs/cluster.md). etcd expires a host's lease no
// earlier than TTL after the last renewal the server *received*, so a deadline counted from when
// the last renewal that succeeded was *sent*, minus a margin, falls strictly before any moment
// the host's VMs can be placed elsewhere. The clock is read by a timer of its own, never by the
// loop that may be blocked in a call: a fence checked there let a VM run on two hosts for 2 s
// (shared/reference/etcd-facts.md). Pure logic.
#pragma once

#include <chrono>
#include <optional>

#include "crosvisor/error.hpp"

namespace crosvisor::cluster {

class FenceClock {
 public:
  using Clock = std::chrono::steady_clock;

  // Refused (invalid_config) unless 0 < margin < ttl.
  static Expected<FenceClock> make(std::chrono::seconds ttl, std::chrono::seconds margin);

  // A renewal (or the grant) sent at `sent` succeeded. An older one than the newest known
  // changes nothing.
  void renewed(Clock::time_point sent);
  // When the host must be fenced; none before its first lease.
  std::optional<Clock::time_point> deadline() const;
  bool expired(Clock::time_point now) const { return deadline() && now >= *deadline(); }
  // How often to renew: five times per TTL, as Kubernetes' node leases do.
  std::chrono::milliseconds renew_every() const { return ttl_ / 5; }

 private:
  FenceClock(std::chrono::seconds ttl, std::chrono::seconds margin) : ttl_(ttl), margin_(margin) {}
  std::chrono::milliseconds ttl_;
  std::chrono::milliseconds margin_;
  std::optional<Clock::time_point> last_sent_;
};

}  // namespace crosvisor::cluster
