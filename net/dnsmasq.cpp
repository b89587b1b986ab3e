#include "net/dnsmasq.hpp"

#include <fstream>

namespace crosvisor::net {
namespace {

std::string netmask(const Ipv4Subnet& subnet) {
  return to_string(Ipv4Address{subnet.mask()});
}

}  // namespace

std::vector<std::string> dnsmasq_args(const Ipv4Subnet& subnet, bool dns,
                                      const std::filesystem::path& dir) {
  const std::string gateway = to_string(subnet.gateway());
  std::vector<std::string> args = {
      "--keep-in-foreground",
      "--conf-file=/dev/null",  // nothing of the host's configuration
      "--log-facility=-",       // stderr: the supervisor's log
      "--pid-file=",            // no pid file: the supervisor holds its pidfd
      // Its own user and group, as root: a change of credentials would clear the parent-death
      // signal, and dnsmasq would outlive a killed daemon (its default group is dip).
      "--user=root", "--group=root", "--no-resolv", "--no-hosts", "--no-poll", "--bind-interfaces",
      std::string("--interface=") + kBridge, "--listen-address=" + gateway, "--dhcp-authoritative",
      // Only the fixed addresses of dhcp-hosts: a MAC that is not a member's gets nothing.
      "--dhcp-range=" + gateway + ",static," + netmask(subnet) + ",infinite",
      "--dhcp-hostsdir=" + (dir / kDhcpHostsDir).string(),
      "--dhcp-leasefile=" + (dir / kLeaseFile).string(),
      "--dhcp-option=option:router",  // none: nothing beyond the network
  };
  if (dns) {
    args.push_back("--hostsdir=" + (dir / kDnsHostsDir).string());
    args.push_back("--dhcp-option=option:dns-server," + gateway);
    args.push_back("--domain-needed");  // bare names are answered here, never sent on
  } else {
    args.push_back("--port=0");  // no DNS at all
    args.push_back("--dhcp-option=option:dns-server");
  }
  return args;
}

std::string dhcp_host(const Member& member) {
  return to_string(member.mac) + "," + to_string(member.address) + "," + member.vm + "\n";
}

std::string dns_host(const Member& member) {
  return to_string(member.address) + " " + member.vm + "\n";
}

std::string member_file(const Member& member) {
  return member.vm + "." + std::to_string(member.index);
}

std::vector<Member> read_members(const std::filesystem::path& dir) {
  std::vector<Member> members;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir / kDhcpHostsDir, ec), end; !ec && it != end;
       it.increment(ec)) {
    // "<vm>.<index>" holding "MAC,IP,NAME".
    const std::string file = it->path().filename().string();
    const auto dot = file.rfind('.');
    std::ifstream in(it->path());
    std::string line;
    if (dot == std::string::npos || !std::getline(in, line))
      continue;
    const auto first = line.find(',');
    const auto second = first == std::string::npos ? first : line.find(',', first + 1);
    if (second == std::string::npos)
      continue;
    auto mac = parse_mac(line.substr(0, first));
    auto address = parse_ipv4(line.substr(first + 1, second - first - 1));
    const std::string vm = line.substr(second + 1);
    std::size_t index = 0;
    try {
      index = std::stoul(file.substr(dot + 1));
    } catch (const std::exception&) {
      continue;
    }
    if (!mac || !address || vm != file.substr(0, dot))
      continue;
    members.push_back(Member{vm, index, *address, *mac});
  }
  return members;
}

}  // namespace crosvisor::net
