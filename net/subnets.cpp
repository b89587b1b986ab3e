#include "net/subnets.hpp"

#include <algorithm>
#include <bit>
#include <fstream>
#include <sstream>

namespace crosvisor::net {

std::optional<Ipv4Subnet> free_subnet(const std::vector<Ipv4Subnet>& taken) {
  const std::uint32_t count = 1u << (24 - kDefaultPool.prefix);
  for (std::uint32_t i = 0; i < count; ++i) {
    const Ipv4Subnet candidate{{kDefaultPool.base.value + (i << 8)}, 24};
    if (std::none_of(taken.begin(), taken.end(),
                     [&](const Ipv4Subnet& other) { return candidate.overlaps(other); }))
      return candidate;
  }
  return std::nullopt;
}

std::vector<Ipv4Subnet> host_routes() {
  std::vector<Ipv4Subnet> routes;
  std::ifstream table("/proc/net/route");
  std::string line;
  std::getline(table, line);  // the header
  while (std::getline(table, line)) {
    std::istringstream fields(line);
    std::string device, destination, gateway, flags, refcnt, use, metric, mask;
    if (!(fields >> device >> destination >> gateway >> flags >> refcnt >> use >> metric >> mask))
      continue;
    // Little-endian hex, as the kernel prints it on x86.
    const auto host_order = [](const std::string& hex) {
      return std::byteswap(static_cast<std::uint32_t>(std::stoul(hex, nullptr, 16)));
    };
    const std::uint32_t net = host_order(destination);
    const std::uint32_t bits = host_order(mask);
    if (bits == 0)
      continue;  // the default route overlaps everything and says nothing
    routes.push_back({{net}, static_cast<std::uint8_t>(std::popcount(bits))});
  }
  return routes;
}

}  // namespace crosvisor::net
