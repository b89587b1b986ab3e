// Where a network without a subnet of its own goes: a /24 of 198.18.0.0/15 (RFC 2544's
// benchmarking block, which no host route uses in practice), skipping the subnets of the host's
// own routes and of crosvisor's other networks, so that even an uplink would never collide.
#pragma once

#include <optional>
#include <vector>

#include "crosvisor/network_spec.hpp"

namespace crosvisor::net {

inline constexpr Ipv4Subnet kDefaultPool{{(198u << 24) | (18u << 16)}, 15};

// The first /24 of the pool that overlaps none of `taken`.
std::optional<Ipv4Subnet> free_subnet(const std::vector<Ipv4Subnet>& taken);
// The host's IPv4 routes (/proc/net/route), as subnets; empty when they cannot be read.
std::vector<Ipv4Subnet> host_routes();

}  // namespace crosvisor::net
