#include "net/address_book.hpp"

#include <algorithm>

namespace crosvisor::net {

Expected<Member> AddressBook::join(const std::string& vm, std::size_t index,
                                   std::optional<Ipv4Address> fixed_address,
                                   std::optional<MacAddress> fixed_mac, MacAddress derived) {
  for (const auto& member : members_) {
    if (member.vm == vm && member.index == index) {
      const bool same = (!fixed_address || *fixed_address == member.address) &&
                        (!fixed_mac || *fixed_mac == member.mac);
      if (same)
        return member;  // a VM started again keeps its address
    }
  }
  const auto taken = [&](Ipv4Address address) {
    return std::any_of(members_.begin(), members_.end(), [&](const Member& m) {
      return m.address == address && !(m.vm == vm && m.index == index);
    });
  };
  Member member{vm, index, {}, fixed_mac.value_or(derived)};
  if (fixed_address) {
    if (!subnet_.assignable(*fixed_address)) {
      return make_error(
          ErrorKind::invalid_config,
          to_string(*fixed_address) + " is not a VM's address in " + to_string(subnet_));
    }
    if (taken(*fixed_address))
      return make_error(ErrorKind::conflict, to_string(*fixed_address) + " is another VM's");
    member.address = *fixed_address;
  } else {
    std::optional<Ipv4Address> free;
    for (std::uint32_t v = subnet_.gateway().value + 1; v < subnet_.broadcast().value; ++v) {
      if (!taken(Ipv4Address{v})) {
        free = Ipv4Address{v};
        break;
      }
    }
    if (!free)
      return make_error(ErrorKind::limit, "network " + to_string(subnet_) + " is full");
    member.address = *free;
  }
  for (const auto& other : members_) {
    if (other.mac == member.mac && !(other.vm == vm && other.index == index))
      return make_error(ErrorKind::conflict, to_string(member.mac) + " is " + other.vm + "'s");
  }
  std::erase_if(members_, [&](const Member& m) { return m.vm == vm && m.index == index; });
  members_.push_back(member);
  return member;
}

void AddressBook::restore(Member member) {
  std::erase_if(members_,
                [&](const Member& m) { return m.vm == member.vm && m.index == member.index; });
  members_.push_back(std::move(member));
}

}  // namespace crosvisor::net
