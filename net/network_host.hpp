// The host side of one network: its namespace, holding a bridge (br0) that has the subnet's
// gateway address, the VMs' TAPs on that bridge, and the directory of dnsmasq's files. Nothing
// of it is on the host's own interfaces: no route leads out of the namespace. File and netlink
// work: run it on the reactor thread, never in an actor's handler.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "net/address_book.hpp"
#include "net/namespace.hpp"

namespace crosvisor::net {

class NetworkHost {
 public:
  static Expected<NetworkHost> create(const Ipv4Subnet& subnet, std::filesystem::path dir);
  // The network of `subnet` a daemon before made in `space` (live restore): refused unless the
  // namespace holds its bridge with the subnet's gateway address. New TAPs are named after the
  // ones there.
  static Expected<NetworkHost> attach(NetworkNamespace space, const Ipv4Subnet& subnet,
                                      std::filesystem::path dir);

  // A TAP for one interface of a VM, on the bridge and up; it goes when its fd (the VMM's copy
  // too) is closed. Its name, for messages.
  struct Tap {
    UniqueFd fd;
    std::string name;
  };
  Expected<Tap> add_tap();
  // A member's entries for dnsmasq (net/dnsmasq.hpp), each file replaced whole.
  Expected<void> write_member(const Member& member) const;

  const NetworkNamespace& space() const { return space_; }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  NetworkHost(NetworkNamespace space, std::filesystem::path dir)
      : space_(std::move(space)), dir_(std::move(dir)) {}
  NetworkNamespace space_;
  std::filesystem::path dir_;
  unsigned next_tap_ = 0;
};

}  // namespace crosvisor::net
