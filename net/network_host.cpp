#include "net/network_host.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "net/dnsmasq.hpp"
#include "net/links.hpp"

namespace crosvisor::net {
namespace {

// Written beside its directory, then renamed in: dnsmasq, watching the directory, reads it whole.
Expected<void> replace_file(const std::filesystem::path& path, const std::string& text) {
  const auto fresh = path.parent_path().parent_path() / (path.filename().string() + ".new");
  UniqueFd fd(::open(fresh.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd || ::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
      ::rename(fresh.c_str(), path.c_str()) != 0)
    return std::unexpected(errno_error(ErrorKind::io, path.string(), errno));
  return {};
}

}  // namespace

Expected<NetworkHost> NetworkHost::create(const Ipv4Subnet& subnet, std::filesystem::path dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return make_error(ErrorKind::io, "create " + dir.string() + ": " + ec.message());
  ::chmod(dir.c_str(), 0700);
  auto space = NetworkNamespace::create();
  if (!space)
    return std::unexpected(space.error());
  auto made = space->inside([&]() -> Expected<void> {
    if (auto up = bring_up("lo"); !up)
      return up;
    if (auto bridge = add_bridge(kBridge); !bridge)
      return bridge;
    if (auto address = set_address(kBridge, subnet.gateway(), subnet.prefix); !address)
      return address;
    return bring_up(kBridge);
  });
  if (!made)
    return std::unexpected(made.error());
  for (const char* sub : {kDhcpHostsDir, kDnsHostsDir}) {
    std::filesystem::create_directory(dir / sub, ec);
    if (ec)
      return make_error(ErrorKind::io, "create " + (dir / sub).string() + ": " + ec.message());
  }
  return NetworkHost(std::move(*space), std::move(dir));
}

Expected<NetworkHost> NetworkHost::attach(NetworkNamespace space, const Ipv4Subnet& subnet,
                                          std::filesystem::path dir) {
  unsigned next_tap = 0;
  auto found = space.inside([&]() -> Expected<void> {
    auto address = address_of(kBridge);
    if (!address)
      return std::unexpected(address.error());
    if (*address != subnet.gateway())
      return make_error(ErrorKind::not_found, std::string("its ") + kBridge + " has " +
                                                  to_string(*address) + ", not " +
                                                  to_string(subnet.gateway()));
    for (const auto& name : device_names()) {
      unsigned number = 0;
      if (std::sscanf(name.c_str(), "tap%u", &number) == 1)
        next_tap = std::max(next_tap, number + 1);
    }
    return {};
  });
  if (!found)
    return std::unexpected(found.error());
  NetworkHost host(std::move(space), std::move(dir));
  host.next_tap_ = next_tap;
  return host;
}

Expected<NetworkHost::Tap> NetworkHost::add_tap() {
  Tap tap;
  tap.name = "tap" + std::to_string(next_tap_++);
  auto made = space_.inside([&]() -> Expected<void> {
    auto fd = create_tap(tap.name);
    if (!fd)
      return std::unexpected(fd.error());
    tap.fd = std::move(*fd);
    if (auto attached = attach_to_bridge(kBridge, tap.name); !attached)
      return attached;
    return bring_up(tap.name);
  });
  if (!made)
    return std::unexpected(made.error());
  return tap;
}

Expected<void> NetworkHost::write_member(const Member& member) const {
  const auto file = member_file(member);
  if (auto dhcp = replace_file(dir_ / kDhcpHostsDir / file, dhcp_host(member)); !dhcp)
    return dhcp;
  return replace_file(dir_ / kDnsHostsDir / file, dns_host(member));
}

}  // namespace crosvisor::net
