#include "config/fleet_networks.hpp"

#include <algorithm>
#include <map>

namespace crosvisor::config {

std::vector<NetworkProblem> network_problems(const FleetSpec& fleet) {
  std::vector<NetworkProblem> problems;
  for (std::size_t i = 0; i < fleet.networks.size(); ++i) {
    const auto& network = fleet.networks[i];
    for (std::size_t j = 0; j < i; ++j) {
      const auto& other = fleet.networks[j];
      if (other.name == network.name) {
        problems.push_back(
            {i, std::nullopt, "name", "the network '" + network.name + "' is declared twice"});
      } else if (network.subnet && other.subnet && network.subnet->overlaps(*other.subnet)) {
        problems.push_back({i, std::nullopt, "subnet",
                            to_string(*network.subnet) + " overlaps " + other.name + "'s " +
                                to_string(*other.subnet)});
      }
    }
  }
  std::map<std::pair<std::string, std::uint32_t>, std::string> address_of;  // (network, IP)
  std::map<MacAddress, std::string> mac_of;
  for (std::size_t v = 0; v < fleet.vms.size(); ++v) {
    const VmSpec& vm = fleet.vms[v].spec;
    const auto fail = [&](std::string message) {
      problems.push_back({std::nullopt, v, "networks", std::move(message)});
    };
    for (const auto& nic : vm.nics) {
      auto network = std::find_if(fleet.networks.begin(), fleet.networks.end(),
                                  [&](const NetworkSpec& n) { return n.name == nic.network; });
      if (network == fleet.networks.end()) {
        fail("'" + nic.network + "' names no [[network]] of this fleet");
        continue;
      }
      if (nic.address) {
        if (!network->subnet) {
          fail("a fixed address needs its network's subnet: give " + nic.network + " a subnet");
        } else if (!network->subnet->assignable(*nic.address)) {
          fail(to_string(*nic.address) + " is not a VM's address in " + nic.network + " (" +
               to_string(*network->subnet) +
               ", less its own, the gateway .1 and broadcast addresses)");
        } else if (auto [it, fresh] =
                       address_of.emplace(std::pair(nic.network, nic.address->value), vm.name);
                   !fresh) {
          fail(to_string(*nic.address) + " is also " + it->second + "'s in " + nic.network);
        }
      }
      if (nic.mac) {
        if (auto [it, fresh] = mac_of.emplace(*nic.mac, vm.name); !fresh)
          fail(to_string(*nic.mac) + " is also " + it->second + "'s");
      }
    }
  }
  return problems;
}

}  // namespace crosvisor::config
