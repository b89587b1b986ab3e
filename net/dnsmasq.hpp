// What Debian's dnsmasq is told for one network (docs/networks.md): DHCP that hands each VM's
// MAC its fixed address and nothing else (no range to lease from, no router: a guest learns no
// way out), and, with dns = true, DNS answering the network's VM names. Everything comes from
// files in the network's own directory, which a SIGHUP makes dnsmasq read again as VMs join.
// Pure logic.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "crosvisor/network_spec.hpp"
#include "net/address_book.hpp"

namespace crosvisor::net {

inline constexpr const char* kBridge = "br0";

// dnsmasq's arguments (after its name).
std::vector<std::string> dnsmasq_args(const Ipv4Subnet& subnet, bool dns,
                                      const std::filesystem::path& dir);
// A member's entry in each directory the arguments name: DHCP ("MAC,IP,NAME") and DNS ("IP NAME");
// the file's name (VM names are file names), the same for both.
std::string dhcp_host(const Member& member);
std::string dns_host(const Member& member);
std::string member_file(const Member& member);
// The members whose DHCP entries are in `dir` (a network taken over from the daemon before),
// parsed back from what dhcp_host wrote; files that are not such entries are skipped.
std::vector<Member> read_members(const std::filesystem::path& dir);
inline constexpr const char* kDhcpHostsDir = "dhcp-hosts.d";
inline constexpr const char* kDnsHostsDir = "hosts.d";
inline constexpr const char* kLeaseFile = "leases";

}  // namespace crosvisor::net
