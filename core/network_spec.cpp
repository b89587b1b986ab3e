#include "crosvisor/network_spec.hpp"

#include <charconv>
#include <cstdio>

namespace crosvisor {
namespace {

std::optional<unsigned> number(std::string_view text, unsigned high, int base = 10) {
  unsigned value = 0;
  const auto* end = text.data() + text.size();
  auto [at, error] = std::from_chars(text.data(), end, value, base);
  if (text.empty() || error != std::errc() || at != end || value > high)
    return std::nullopt;
  return value;
}

}  // namespace

std::optional<Ipv4Address> parse_ipv4(std::string_view text) {
  std::uint32_t value = 0;
  for (int part = 0; part < 4; ++part) {
    const auto dot = text.find('.');
    if ((part < 3) == (dot == std::string_view::npos))
      return std::nullopt;
    const auto octet = number(text.substr(0, dot), 255);
    if (!octet || (text.size() > 1 && text[0] == '0' && text.substr(0, dot).size() > 1))
      return std::nullopt;  // no leading zeros: "010" reads as octal elsewhere
    value = value << 8 | *octet;
    text = dot == std::string_view::npos ? std::string_view() : text.substr(dot + 1);
  }
  return Ipv4Address{value};
}

std::string to_string(Ipv4Address address) {
  const auto v = address.value;
  return std::to_string(v >> 24) + "." + std::to_string(v >> 16 & 255) + "." +
         std::to_string(v >> 8 & 255) + "." + std::to_string(v & 255);
}

std::optional<Ipv4Subnet> parse_subnet(std::string_view text) {
  const auto slash = text.find('/');
  if (slash == std::string_view::npos)
    return std::nullopt;
  const auto base = parse_ipv4(text.substr(0, slash));
  const auto prefix = number(text.substr(slash + 1), 32);
  if (!base || !prefix || *prefix < kMinSubnetPrefix || *prefix > kMaxSubnetPrefix)
    return std::nullopt;
  Ipv4Subnet subnet{*base, static_cast<std::uint8_t>(*prefix)};
  if ((base->value & subnet.mask()) != base->value)
    return std::nullopt;  // 10.0.0.5/24 is a host, not a subnet
  return subnet;
}

std::string to_string(const Ipv4Subnet& subnet) {
  return to_string(subnet.base) + "/" + std::to_string(subnet.prefix);
}

std::optional<MacAddress> parse_mac(std::string_view text) {
  MacAddress mac;
  if (text.size() != 17)
    return std::nullopt;
  for (std::size_t i = 0; i < 6; ++i) {
    if (i < 5 && text[i * 3 + 2] != ':')
      return std::nullopt;
    const auto byte = number(text.substr(i * 3, 2), 255, 16);
    if (!byte)
      return std::nullopt;
    mac.bytes[i] = static_cast<std::uint8_t>(*byte);
  }
  return mac;
}

std::string to_string(const MacAddress& mac) {
  char text[18];
  std::snprintf(text, sizeof(text), "%02x:%02x:%02x:%02x:%02x:%02x", mac.bytes[0], mac.bytes[1],
                mac.bytes[2], mac.bytes[3], mac.bytes[4], mac.bytes[5]);
  return text;
}

MacAddress derived_mac(std::string_view fleet, std::string_view vm, std::size_t index) {
  // FNV-1a over "fleet/vm/index": stable across builds and hosts (std::hash is neither).
  std::uint64_t hash = 14695981039346656037ull;
  const auto mix = [&](std::string_view text) {
    for (unsigned char c : text) {
      hash ^= c;
      hash *= 1099511628211ull;
    }
  };
  mix(fleet);
  mix("/");
  mix(vm);
  mix("/" + std::to_string(index));
  MacAddress mac;
  mac.bytes[0] = 0x02;  // locally administered, unicast
  for (std::size_t i = 1; i < 6; ++i)
    mac.bytes[i] = static_cast<std::uint8_t>(hash >> (8 * (i - 1)));
  return mac;
}

}  // namespace crosvisor
