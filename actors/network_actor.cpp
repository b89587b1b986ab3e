#include "actors/network_actor.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <vector>

#include "crosvisor/error_bridge.hpp"
#include "net/address_book.hpp"
#include "net/dnsmasq.hpp"
#include "net/network_host.hpp"
#include "vmm/reactor.hpp"

// Handed between the reactor thread and the actor, never serialized.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<crosvisor::net::NetworkHost>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<const crosvisor::UniqueFd>)

namespace crosvisor {
namespace {

using host_made_atom = caf::atom_constant<caf::atom("hostmade")>;
using joined_atom = caf::atom_constant<caf::atom("joined")>;
using dnsmasq_gone_atom = caf::atom_constant<caf::atom("dnsgone")>;
using dnsmasq_due_atom = caf::atom_constant<caf::atom("dnsdue")>;

using HostPtr = std::shared_ptr<net::NetworkHost>;

// The network, with what the reactor tells it.
using NetworkImpl =
    NetworkActor::extend<caf::reacts_to<host_made_atom, HostPtr, std::string>,
                         caf::reacts_to<joined_atom, std::uint64_t, std::shared_ptr<const UniqueFd>,
                                        std::string, std::string>,
                         caf::reacts_to<dnsmasq_gone_atom, std::string>,
                         caf::reacts_to<dnsmasq_due_atom>>;

struct NetworkState {
  static inline const char* name = "crosvisor.network";
  NetworkState() = default;  // not an aggregate: see ProxyState
  NetworkPlace place;
  std::shared_ptr<vmm::Reactor> reactor;
  std::optional<net::AddressBook> book;
  HostPtr host;        // set once up; only the reactor thread works with it
  std::string failed;  // why it could not be brought up
  std::vector<caf::typed_response_promise<std::string>> ready_waiters;
  struct Waiting {  // a join that waits for the network to be up
    net::Member member;
    caf::typed_response_promise<NicLease> promise;
  };
  std::vector<Waiting> waiting;
  std::map<std::uint64_t, Waiting> joining;  // TAPs being made, by token
  std::uint64_t next_token = 1;
  vmm::Reactor::ChildId dnsmasq = 0;
  bool dnsmasq_alive = false;
  int dnsmasq_restarts = 0;

  ~NetworkState() {
    if (!reactor)
      return;
    if (dnsmasq_alive)
      reactor->signal(dnsmasq, SIGKILL, true);
    // The namespace closes with the last fd; its files go on the reactor thread.
    reactor->post([host = std::move(host), dir = place.dir] {
      std::error_code ignored;
      std::filesystem::remove_all(dir, ignored);
    });
  }
};

using Self = NetworkImpl::stateful_pointer<NetworkState>;

// The reactor's callbacks name the network weakly: a dnsmasq that outlived its network's last
// holder must not keep the network (and so itself) alive.
void tell(const caf::actor_addr& network, auto... message) {
  if (auto me = caf::actor_cast<NetworkImpl>(network))
    caf::anon_send(me, std::move(message)...);
}

void start_dnsmasq(Self self) {
  auto& st = self->state;
  const caf::actor_addr me = self->address();
  const std::string name = st.place.name;
  vmm::ChildObserver observer;
  observer.spawned = [](pid_t) {};
  observer.started = [] {};
  observer.launch_failed = [me](Error error) { tell(me, dnsmasq_gone_atom::value, error.message); };
  observer.console_line = [](std::string) {};
  observer.vmm_output_line = [name](std::string line) {
    spdlog::debug("network {}: dnsmasq: {}", name, line);
  };
  observer.guest_notice = [](lifecycle::GuestNotice) {};
  observer.exited = [me](process::ExitStatus status) {
    tell(me, dnsmasq_gone_atom::value, status.to_string());
  };
  st.dnsmasq = st.reactor->launch(
      [host = st.host, place = st.place]() -> Expected<vmm::VmmLaunch> {
        vmm::VmmLaunch launch;
        launch.request.binary =
            ::access("/usr/sbin/dnsmasq", X_OK) == 0 ? "/usr/sbin/dnsmasq" : "dnsmasq";
        launch.request.args = net::dnsmasq_args(place.subnet, place.dns, place.dir);
        launch.request.network_namespace = host->space().fd();
        launch.control = {vmm::ControlProtocol::none, {}};
        if (auto streams = vmm::plan_standard_streams(launch, vmm::LaunchContext{}); !streams)
          return std::unexpected(streams.error());
        return launch;
      },
      std::move(observer));
  st.dnsmasq_alive = true;
}

// Brings `member` on: its entries for dnsmasq, then its TAP, on the reactor thread.
void make_tap(Self self, NetworkState::Waiting waiting) {
  auto& st = self->state;
  const std::uint64_t token = st.next_token++;
  auto member = waiting.member;
  st.joining.emplace(token, std::move(waiting));
  auto me = caf::actor_cast<NetworkImpl>(self);
  st.reactor->post([me, token, host = st.host, member = std::move(member)] {
    auto written = host->write_member(member);
    auto tap = written ? host->add_tap()
                       : Expected<net::NetworkHost::Tap>(std::unexpected(written.error()));
    if (!tap) {
      caf::anon_send(me, joined_atom::value, token, std::shared_ptr<const UniqueFd>(),
                     std::string(), tap.error().message);
      return;
    }
    caf::anon_send(me, joined_atom::value, token,
                   std::make_shared<const UniqueFd>(std::move(tap->fd)), tap->name, std::string());
  });
}

NetworkImpl::behavior_type network(Self self, NetworkPlace place,
                                   std::shared_ptr<vmm::Reactor> reactor) {
  auto& st = self->state;
  st.place = std::move(place);
  st.reactor = std::move(reactor);
  st.book.emplace(st.place.subnet);
  auto me = caf::actor_cast<NetworkImpl>(self);
  st.reactor->post([me, subnet = st.place.subnet, dir = st.place.dir] {
    auto host = net::NetworkHost::create(subnet, dir);
    if (!host)
      return caf::anon_send(me, host_made_atom::value, HostPtr(), host.error().message);
    caf::anon_send(me, host_made_atom::value, std::make_shared<net::NetworkHost>(std::move(*host)),
                   std::string());
  });
  return {
      [=](host_made_atom, HostPtr host, const std::string& error) {
        auto& s = self->state;
        if (!host) {
          s.failed = error;
          spdlog::error("network {}: {}", s.place.name, error);
        } else {
          s.host = std::move(host);
          start_dnsmasq(self);
          spdlog::info("network {}: up, {} (dns {})", s.place.name, to_string(s.place.subnet),
                       s.place.dns ? "on" : "off");
        }
        for (auto& waiter : s.ready_waiters) {
          if (s.failed.empty())
            waiter.deliver(to_string(s.place.subnet));
          else
            waiter.deliver(
                to_caf_error(ErrorKind::launch, "network " + s.place.name + ": " + error));
        }
        s.ready_waiters.clear();
        auto waiting = std::move(s.waiting);
        s.waiting.clear();
        for (auto& join : waiting) {
          if (s.failed.empty())
            make_tap(self, std::move(join));
          else
            join.promise.deliver(
                to_caf_error(ErrorKind::launch, "network " + s.place.name + ": " + s.failed));
        }
      },
      [=](net_ready_atom) -> caf::result<std::string> {
        auto& s = self->state;
        if (!s.failed.empty())
          return to_caf_error(ErrorKind::launch, "network " + s.place.name + ": " + s.failed);
        if (s.host)
          return to_string(s.place.subnet);
        auto promise = self->make_response_promise<std::string>();
        s.ready_waiters.push_back(promise);
        return promise;
      },
      [=](net_join_atom, const std::string& vm, const std::string& fleet, std::uint32_t index,
          const NicSpec& nic) -> caf::result<NicLease> {
        auto& s = self->state;
        if (!s.failed.empty())
          return to_caf_error(ErrorKind::launch, "network " + s.place.name + ": " + s.failed);
        auto member = s.book->join(vm, index, nic.address, nic.mac, derived_mac(fleet, vm, index));
        if (!member)
          return to_caf_error(member.error().kind,
                              "network " + s.place.name + ": " + member.error().message);
        auto promise = self->make_response_promise<NicLease>();
        NetworkState::Waiting waiting{*member, promise};
        if (s.host)
          make_tap(self, std::move(waiting));
        else
          s.waiting.push_back(std::move(waiting));
        return promise;
      },
      [=](joined_atom, std::uint64_t token, std::shared_ptr<const UniqueFd> tap,
          const std::string& tap_name, const std::string& error) {
        auto& s = self->state;
        auto found = s.joining.find(token);
        if (found == s.joining.end())
          return;
        auto waiting = std::move(found->second);
        s.joining.erase(found);
        if (!error.empty()) {
          waiting.promise.deliver(
              to_caf_error(ErrorKind::launch, "network " + s.place.name + ": " + error));
          return;
        }
        waiting.promise.deliver(NicLease{s.place.name, waiting.member.address, waiting.member.mac,
                                         std::move(tap), tap_name});
      },
      [=](dnsmasq_gone_atom, const std::string& how) {
        auto& s = self->state;
        s.dnsmasq_alive = false;
        // Supervised like a VM of a fleet: started again, a little later each time.
        const auto delay = std::chrono::milliseconds(250 << std::min(s.dnsmasq_restarts++, 6));
        spdlog::warn("network {}: dnsmasq ended ({}): starting it again in {} ms", s.place.name,
                     how, delay.count());
        self->delayed_send(self, delay, dnsmasq_due_atom::value);
      },
      [=](dnsmasq_due_atom) {
        if (!self->state.dnsmasq_alive)
          start_dnsmasq(self);
      },
  };
}

}  // namespace

NetworkActor spawn_network(caf::actor_system& system, NetworkPlace place,
                           std::shared_ptr<vmm::Reactor> reactor) {
  return system.spawn(network, std::move(place), std::move(reactor));
}

}  // namespace crosvisor
