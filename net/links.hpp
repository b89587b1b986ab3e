// Network devices, made and set with the classic ioctls, in the namespace of the calling thread
// (call these inside NetworkNamespace::inside). Names are at most 15 bytes (IFNAMSIZ - 1).
#pragma once

#include <string>
#include <vector>

#include "core/unique_fd.hpp"
#include "crosvisor/error.hpp"
#include "crosvisor/network_spec.hpp"

namespace crosvisor::net {

Expected<void> add_bridge(const std::string& name);
Expected<void> set_address(const std::string& device, Ipv4Address address, std::uint8_t prefix);
Expected<void> bring_up(const std::string& device);
// A TAP device (no packet information, with virtio-net headers, as QEMU and crosvm want it): it
// exists while the returned fd (or a copy, in a VMM) is open.
Expected<UniqueFd> create_tap(const std::string& name);
Expected<void> attach_to_bridge(const std::string& bridge, const std::string& device);
// A device's IPv4 address; not_found when there is no such device.
Expected<Ipv4Address> address_of(const std::string& device);
// The names of every device.
std::vector<std::string> device_names();

}  // namespace crosvisor::net
