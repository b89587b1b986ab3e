// Networks of VMs (docs/networks.md): what a fleet declares ([[network]]) and how a VM joins one
// (`networks = [...]`). Plain data and the address arithmetic every reader of the schema shares.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace crosvisor {

struct Ipv4Address {
  std::uint32_t value = 0;  // host order
  friend auto operator<=>(const Ipv4Address&, const Ipv4Address&) = default;
};
std::optional<Ipv4Address> parse_ipv4(std::string_view text);
std::string to_string(Ipv4Address address);

struct Ipv4Subnet {
  Ipv4Address base;
  std::uint8_t prefix = 24;
  friend bool operator==(const Ipv4Subnet&, const Ipv4Subnet&) = default;

  std::uint32_t mask() const { return prefix == 0 ? 0 : ~0u << (32 - prefix); }
  bool contains(Ipv4Address address) const {
    return (address.value & mask()) == (base.value & mask());
  }
  bool overlaps(const Ipv4Subnet& other) const {
    const std::uint32_t common = prefix < other.prefix ? mask() : other.mask();
    return (base.value & common) == (other.base.value & common);
  }
  // The network's own address (.1 of a /24): the bridge, dnsmasq's DHCP and DNS.
  Ipv4Address gateway() const { return {base.value + 1}; }
  Ipv4Address broadcast() const { return {base.value | ~mask()}; }
  // Whether a VM may have `address`: inside, and not the subnet's own, gateway or broadcast.
  bool assignable(Ipv4Address address) const {
    return contains(address) && address != base && address != gateway() && address != broadcast();
  }
};
// "10.20.0.0/24"; the base must be the subnet's first address, the prefix 16 to 29.
std::optional<Ipv4Subnet> parse_subnet(std::string_view text);
std::string to_string(const Ipv4Subnet& subnet);

struct MacAddress {
  std::array<std::uint8_t, 6> bytes{};
  friend auto operator<=>(const MacAddress&, const MacAddress&) = default;
  // A unicast address (not multicast): the only kind an interface may have.
  bool unicast() const { return (bytes[0] & 1) == 0; }
};
std::optional<MacAddress> parse_mac(std::string_view text);
std::string to_string(const MacAddress& mac);
// The MAC of interface `index` of VM `vm` of `fleet`: the same on every boot and every host,
// locally administered (0x02 set, unicast), from a hash of the three.
MacAddress derived_mac(std::string_view fleet, std::string_view vm, std::size_t index);

// A network a fleet declares: its VMs reach each other there and nothing else.
struct NetworkSpec {
  std::string name;
  std::optional<Ipv4Subnet> subnet;  // nothing: crosvisord picks a free /24 (docs/networks.md)
  bool dns = false;                  // dnsmasq answers the network's VM names
  friend bool operator==(const NetworkSpec&, const NetworkSpec&) = default;
};

// One interface of a VM: the network it joins, and optionally its fixed address and MAC
// (otherwise given by the network, the same on every boot).
struct NicSpec {
  std::string network;
  std::optional<Ipv4Address> address;
  std::optional<MacAddress> mac;
  friend bool operator==(const NicSpec&, const NicSpec&) = default;
};

inline constexpr std::size_t kMaxNics = 8;
inline constexpr std::uint8_t kMinSubnetPrefix = 16;
inline constexpr std::uint8_t kMaxSubnetPrefix = 29;

}  // namespace crosvisor
