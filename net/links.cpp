#include "net/links.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cstring>

namespace crosvisor::net {
namespace {

Expected<ifreq> request_for(const std::string& device) {
  ifreq request{};
  if (device.empty() || device.size() >= IFNAMSIZ)
    return make_error(ErrorKind::invalid_config, "device name '" + device + "' is too long");
  std::memcpy(request.ifr_name, device.c_str(), device.size() + 1);
  return request;
}

// An ioctl on a throwaway datagram socket of this thread's namespace.
Expected<void> control(unsigned long command, void* argument, const std::string& what) {
  UniqueFd socket(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!socket)
    return std::unexpected(errno_error(ErrorKind::io, "socket", errno));
  if (::ioctl(socket.get(), command, argument) != 0)
    return std::unexpected(errno_error(ErrorKind::io, what, errno));
  return {};
}

sockaddr_in ipv4(std::uint32_t host_order) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(host_order);
  return address;
}

}  // namespace

Expected<void> add_bridge(const std::string& name) {
  auto request = request_for(name);
  if (!request)
    return std::unexpected(request.error());
  return control(SIOCBRADDBR, request->ifr_name, "add bridge " + name);
}

Expected<void> set_address(const std::string& device, Ipv4Address address, std::uint8_t prefix) {
  auto request = request_for(device);
  if (!request)
    return std::unexpected(request.error());
  auto in = ipv4(address.value);
  std::memcpy(&request->ifr_addr, &in, sizeof(in));
  if (auto set = control(SIOCSIFADDR, &*request, "address of " + device); !set)
    return set;
  auto mask = ipv4(prefix == 0 ? 0 : ~0u << (32 - prefix));
  std::memcpy(&request->ifr_netmask, &mask, sizeof(mask));
  return control(SIOCSIFNETMASK, &*request, "netmask of " + device);
}

Expected<void> bring_up(const std::string& device) {
  auto request = request_for(device);
  if (!request)
    return std::unexpected(request.error());
  if (auto got = control(SIOCGIFFLAGS, &*request, "flags of " + device); !got)
    return got;
  request->ifr_flags = static_cast<short>(request->ifr_flags | IFF_UP);
  return control(SIOCSIFFLAGS, &*request, "bring up " + device);
}

Expected<UniqueFd> create_tap(const std::string& name) {
  auto request = request_for(name);
  if (!request)
    return std::unexpected(request.error());
  UniqueFd tun(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
  if (!tun)
    return std::unexpected(errno_error(ErrorKind::io, "open /dev/net/tun", errno));
  request->ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if (::ioctl(tun.get(), TUNSETIFF, &*request) != 0)
    return std::unexpected(errno_error(ErrorKind::io, "TAP device " + name, errno));
  return tun;
}

Expected<void> attach_to_bridge(const std::string& bridge, const std::string& device) {
  auto request = request_for(bridge);
  if (!request)
    return std::unexpected(request.error());
  request->ifr_ifindex = static_cast<int>(::if_nametoindex(device.c_str()));
  if (request->ifr_ifindex == 0)
    return std::unexpected(errno_error(ErrorKind::io, "device " + device, errno));
  return control(SIOCBRADDIF, &*request, "attach " + device + " to " + bridge);
}

Expected<Ipv4Address> address_of(const std::string& device) {
  auto request = request_for(device);
  if (!request)
    return std::unexpected(request.error());
  if (::if_nametoindex(device.c_str()) == 0)
    return make_error(ErrorKind::not_found, "no device " + device);
  if (auto got = control(SIOCGIFADDR, &*request, "address of " + device); !got)
    return std::unexpected(got.error());
  sockaddr_in in{};
  std::memcpy(&in, &request->ifr_addr, sizeof(in));
  return Ipv4Address{ntohl(in.sin_addr.s_addr)};
}

std::vector<std::string> device_names() {
  std::vector<std::string> names;
  struct if_nameindex* all = ::if_nameindex();
  if (all == nullptr)
    return names;
  for (const struct if_nameindex* it = all; it->if_index != 0; ++it)
    names.emplace_back(it->if_name);
  ::if_freenameindex(all);
  return names;
}

}  // namespace crosvisor::net
