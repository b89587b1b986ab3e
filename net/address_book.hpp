// Who has which address and MAC on one network. An interface is known by its VM's name and its
// index among the VM's networks, so that a VM started again gets what it had (dnsmasq hands
// addresses out by MAC, and the MAC is the same every boot). Pure logic.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "crosvisor/error.hpp"
#include "crosvisor/network_spec.hpp"

namespace crosvisor::net {

struct Member {
  std::string vm;
  std::size_t index = 0;  // among the VM's networks
  Ipv4Address address;
  MacAddress mac;
};

class AddressBook {
 public:
  explicit AddressBook(Ipv4Subnet subnet) : subnet_(subnet) {}

  // The interface's address and MAC: what it had before, else the fixed ones it asks for, else
  // the lowest free address and `derived` (derived_mac of its fleet, VM and index). Refused when a
  // fixed address is outside the subnet or another VM's, or the subnet is full.
  Expected<Member> join(const std::string& vm, std::size_t index,
                        std::optional<Ipv4Address> fixed_address,
                        std::optional<MacAddress> fixed_mac, MacAddress derived);
  // Knows `member` again, as a network taken over from the daemon before had it (its dnsmasq
  // files, read_members): what it was given stays its own.
  void restore(Member member);
  const std::vector<Member>& members() const { return members_; }
  const Ipv4Subnet& subnet() const { return subnet_; }

 private:
  Ipv4Subnet subnet_;
  std::vector<Member> members_;
};

}  // namespace crosvisor::net
