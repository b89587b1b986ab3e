// A network of VMs (docs/networks.md) as an actor: it owns the network's namespace, bridge and
// dnsmasq (a supervised child of the reactor, started again if it dies), hands each VM interface
// that joins its address, MAC and a fresh TAP, and goes, with all of that, once nobody holds it:
// its fleet, and the VMs on it. A durable fleet's network outlives the daemon instead (live
// restore, docs/state.md): its dnsmasq runs on, and the next daemon finds its namespace again.
#pragma once

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "actors/state_keeper.hpp"
#include "core/unique_fd.hpp"
#include "crosvisor/messages.hpp"
#include "crosvisor/network_spec.hpp"
#include "process/proc_identity.hpp"

namespace crosvisor {

namespace vmm {
class Reactor;
}

using net_join_atom = caf::atom_constant<caf::atom("netjoin")>;
using net_ready_atom = caf::atom_constant<caf::atom("netready")>;
using net_let_go_atom = caf::atom_constant<caf::atom("netletgo")>;

// What an interface of a VM gets from its network.
struct NicLease {
  std::string network;
  Ipv4Address address;
  MacAddress mac;
  std::shared_ptr<const UniqueFd> tap;  // for one launch: the VMM gets a copy
  std::string tap_name;
};

using NetworkActor = caf::typed_actor<
    // -> once the network is up (namespace, bridge, dnsmasq), its subnet as text; an error if it
    // could not be brought up.
    caf::replies_to<net_ready_atom>::with<std::string>,
    // (vm, fleet, index among the VM's networks, what it asks for) -> its address (the same as
    // the last time that interface joined), MAC and a new TAP.
    caf::replies_to<net_join_atom, std::string, std::string, std::uint32_t,
                    NicSpec>::with<NicLease>,
    // A durable network's dnsmasq and namespace are left to the next daemon (live restore):
    // nothing of it is removed when the actor goes -> whether it was durable.
    caf::replies_to<net_let_go_atom>::with<bool>>;

// A network that outlives the daemon with its fleet's VMs (live restore, docs/state.md): its
// record kept, its dnsmasq durable, and, when the daemon before left it running, taken over.
struct DurableNetwork {
  std::string fleet;
  std::optional<store::NetworkRecord> takeover;
  // The VMMs taken over on it: when its dnsmasq is gone, its namespace is found through their
  // TAPs.
  std::vector<process::ProcessIdentity> vmms;
  StateKeeperActor keeper;  // the service's
  std::string boot_id;
};

using network_up_atom = caf::atom_constant<caf::atom("netup")>;

// What the service does for networks, its internal half (a fleet asks it): (network, owner,
// durable or not) -> the network, up; refused when the owner has a network of that name, the
// subnet overlaps another network of this daemon or a route of the host, or the network cannot
// be made. A durable one is made so only by a service with a state directory.
using NetworkRegistry =
    caf::typed_actor<caf::replies_to<network_up_atom, NetworkSpec, std::optional<std::uint32_t>,
                                     std::optional<DurableNetwork>>::with<NetworkActor>>;

struct NetworkPlace {
  std::string name;
  Ipv4Subnet subnet;
  bool dns = false;
  std::optional<std::uint32_t> owner;
  std::filesystem::path dir;  // dnsmasq's files; removed when the network goes
  std::optional<DurableNetwork> durable;
};

NetworkActor spawn_network(caf::actor_system& system, NetworkPlace place,
                           std::shared_ptr<vmm::Reactor> reactor);

}  // namespace crosvisor

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::NicLease)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::NicSpec)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::NetworkSpec)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::optional<crosvisor::DurableNetwork>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<crosvisor::NetworkActor>)
