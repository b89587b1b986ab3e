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
#include "process/pidfd.hpp"
#include "vmm/reactor.hpp"

// Handed between the reactor thread and the actor, never serialized.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<crosvisor::net::NetworkHost>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::optional<crosvisor::process::ProcessIdentity>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::process::ProcessIdentity)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<crosvisor::net::Member>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<const crosvisor::UniqueFd>)

namespace crosvisor {
namespace {

using host_made_atom = caf::atom_constant<caf::atom("hostmade")>;
using joined_atom = caf::atom_constant<caf::atom("joined")>;
using dnsmasq_gone_atom = caf::atom_constant<caf::atom("dnsgone")>;
using dnsmasq_due_atom = caf::atom_constant<caf::atom("dnsdue")>;
using dnsmasq_known_atom = caf::atom_constant<caf::atom("dnsknown")>;

using HostPtr = std::shared_ptr<net::NetworkHost>;

// The network, with what the reactor tells it.
using NetworkImpl = NetworkActor::extend<
    caf::reacts_to<host_made_atom, HostPtr, std::string, std::optional<process::ProcessIdentity>,
                   std::vector<net::Member>>,
    caf::reacts_to<joined_atom, std::uint64_t, std::shared_ptr<const UniqueFd>, std::string,
                   std::string>,
    caf::reacts_to<dnsmasq_gone_atom, std::string>, caf::reacts_to<dnsmasq_due_atom>,
    caf::reacts_to<dnsmasq_known_atom, process::ProcessIdentity>>;

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
  bool let_go = false;  // left to the next daemon: nothing of it is removed

  ~NetworkState() {
    if (!reactor || let_go)
      return;
    if (dnsmasq_alive)
      reactor->signal(dnsmasq, SIGKILL, true);
    if (place.durable && place.owner)
      caf::anon_send(place.durable->keeper, drop_network_atom::value, *place.owner, place.name);
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

// The network's record, as the state keeper writes it (dnsmasq's identity, when one is known).
store::NetworkRecord record_of(const NetworkState& st,
                               const std::optional<process::ProcessIdentity>& dnsmasq) {
  store::NetworkRecord record;
  record.name = st.place.name;
  record.fleet = st.place.durable->fleet;
  record.owner_uid = st.place.owner.value_or(0);
  record.boot_id = st.place.durable->boot_id;
  record.subnet = to_string(st.place.subnet);
  record.dns = st.place.dns;
  record.dir = st.place.dir;
  if (dnsmasq) {
    record.dnsmasq_pid = dnsmasq->pid;
    record.dnsmasq_start_time = dnsmasq->start_time;
    record.dnsmasq_args = dnsmasq->args;
  }
  return record;
}

void keep_record(Self self, const std::optional<process::ProcessIdentity>& dnsmasq) {
  auto& st = self->state;
  if (st.place.durable && st.place.owner && !st.let_go)
    caf::anon_send(st.place.durable->keeper, store_network_atom::value, record_of(st, dnsmasq));
}

vmm::ChildObserver dnsmasq_observer(Self self) {
  auto& st = self->state;
  const caf::actor_addr me = self->address();
  const std::string name = st.place.name;
  vmm::ChildObserver observer;
  observer.spawned = [](pid_t) {};
  observer.started = [] {};
  observer.launch_failed = [me](Error error) { tell(me, dnsmasq_gone_atom::value, error.message); };
  observer.console_text = [](std::string) {};
  observer.vmm_output_line = [name](std::string line) {
    spdlog::debug("network {}: dnsmasq: {}", name, line);
  };
  observer.guest_notice = [](lifecycle::GuestNotice) {};
  observer.exited = [me](process::ExitStatus status) {
    tell(me, dnsmasq_gone_atom::value, status.to_string());
  };
  observer.identified = [me](process::ProcessIdentity identity) {
    tell(me, dnsmasq_known_atom::value, std::move(identity));
  };
  observer.lost = [me](Error error) { tell(me, dnsmasq_gone_atom::value, error.message); };
  return observer;
}

void start_dnsmasq(Self self) {
  auto& st = self->state;
  const bool durable = st.place.durable.has_value();
  st.dnsmasq = st.reactor->launch(
      [host = st.host, place = st.place, durable]() -> Expected<vmm::VmmLaunch> {
        vmm::VmmLaunch launch;
        launch.request.binary =
            ::access("/usr/sbin/dnsmasq", X_OK) == 0 ? "/usr/sbin/dnsmasq" : "dnsmasq";
        launch.request.args = net::dnsmasq_args(place.subnet, place.dns, place.dir);
        launch.request.network_namespace = host->space().fd();
        // A durable network's dnsmasq runs on without a daemon, holding its namespace; its
        // output goes through the FIFO vmm.out of its directory, as a durable VMM's does.
        launch.request.die_with_supervisor = !durable;
        launch.control = {vmm::ControlProtocol::none, {}};
        vmm::LaunchContext context;
        context.durable = durable;
        context.run_dir = place.dir;
        if (auto streams = vmm::plan_standard_streams(launch, context); !streams)
          return std::unexpected(streams.error());
        return launch;
      },
      dnsmasq_observer(self));
  st.dnsmasq_alive = true;
}

// The dnsmasq the daemon before left running, watched again.
void adopt_dnsmasq(Self self, process::ProcessIdentity identity) {
  auto& st = self->state;
  vmm::Takeover takeover;
  takeover.identity = std::move(identity);
  takeover.control = {vmm::ControlProtocol::none, {}};
  takeover.run_dir = st.place.dir;
  takeover.console = false;
  takeover.vm = "dnsmasq of network " + st.place.name;
  st.dnsmasq = st.reactor->adopt(std::move(takeover), dnsmasq_observer(self));
  st.dnsmasq_alive = true;
}

// On the reactor thread: the namespace of a network the daemon before left running, found
// through its dnsmasq, else through the TAP of a VMM on it; the dnsmasq to adopt, if it runs.
Expected<net::NetworkHost> find_again(const NetworkPlace& place,
                                      std::optional<process::ProcessIdentity>& dnsmasq) {
  const auto& record = *place.durable->takeover;
  if (record.dnsmasq_pid > 0) {
    process::ProcessIdentity identity{record.dnsmasq_pid, record.dnsmasq_start_time,
                                      record.dnsmasq_args};
    if (auto pidfd = process::open_same_process(identity)) {
      auto space = net::NetworkNamespace::of_process(identity.pid, pidfd->get());
      auto host = space ? net::NetworkHost::attach(std::move(*space), place.subnet, place.dir)
                        : Expected<net::NetworkHost>(std::unexpected(space.error()));
      if (host) {
        dnsmasq = identity;
        spdlog::info("network {}: taken over with its dnsmasq (pid {})", place.name, identity.pid);
        return host;
      }
      // Not serving this network's namespace: of no use, and of nobody else's.
      spdlog::warn("network {}: its dnsmasq (pid {}) is not on it ({}): killed", place.name,
                   identity.pid, host.error().message);
      pidfd_send_signal(pidfd->get(), SIGKILL, nullptr, 0);
    }
  }
  for (const auto& vmm : place.durable->vmms) {
    auto pidfd = process::open_same_process(vmm);
    if (!pidfd)
      continue;
    for (auto& tap : net::taps_held_by(vmm.pid, pidfd->get())) {
      auto space = net::NetworkNamespace::of_tap(tap.get());
      if (!space)
        continue;
      if (auto host = net::NetworkHost::attach(std::move(*space), place.subnet, place.dir)) {
        spdlog::info("network {}: its dnsmasq is gone; taken over through a TAP of pid {}",
                     place.name, vmm.pid);
        return host;
      }
    }
  }
  return make_error(ErrorKind::not_found, "neither its dnsmasq nor a VM on it runs");
}

// On the reactor thread: the network's namespace, bridge and directory, made or found again.
void make_host(NetworkImpl me, NetworkPlace place) {
  std::optional<process::ProcessIdentity> dnsmasq;
  std::vector<net::Member> members;
  Expected<net::NetworkHost> host = make_error(ErrorKind::not_found, "not taken over");
  if (place.durable && place.durable->takeover) {
    members = net::read_members(place.dir);  // what each VM was given stays its own
    host = find_again(place, dnsmasq);
    if (!host)
      spdlog::info("network {}: made anew: {}", place.name, host.error().message);
  }
  if (!host)
    host = net::NetworkHost::create(place.subnet, place.dir);
  if (!host)
    return caf::anon_send(me, host_made_atom::value, HostPtr(), host.error().message, dnsmasq,
                          std::move(members));
  caf::anon_send(me, host_made_atom::value, std::make_shared<net::NetworkHost>(std::move(*host)),
                 std::string(), dnsmasq, std::move(members));
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
  st.reactor->post([me, place = st.place] { make_host(me, place); });
  return {
      [=](host_made_atom, HostPtr host, const std::string& error,
          std::optional<process::ProcessIdentity> dnsmasq, std::vector<net::Member> members) {
        auto& s = self->state;
        for (auto& member : members)
          s.book->restore(std::move(member));
        if (!host) {
          s.failed = error;
          spdlog::error("network {}: {}", s.place.name, error);
        } else {
          s.host = std::move(host);
          // Recorded before any VM joins (the keeper writes in order): a VM on it is never
          // recorded without its network.
          keep_record(self, dnsmasq);
          if (dnsmasq)
            adopt_dnsmasq(self, std::move(*dnsmasq));
          else
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
        if (s.let_go)
          return;
        s.dnsmasq_alive = false;
        // Supervised like a VM of a fleet: started again, a little later each time.
        const auto delay = std::chrono::milliseconds(250 << std::min(s.dnsmasq_restarts++, 6));
        spdlog::warn("network {}: dnsmasq ended ({}): starting it again in {} ms", s.place.name,
                     how, delay.count());
        self->delayed_send(self, delay, dnsmasq_due_atom::value);
      },
      [=](dnsmasq_due_atom) {
        if (!self->state.dnsmasq_alive && !self->state.let_go)
          start_dnsmasq(self);
      },
      [=](dnsmasq_known_atom, const process::ProcessIdentity& identity) {
        keep_record(self, identity);
      },
      [=](net_let_go_atom) {
        auto& s = self->state;
        if (!s.place.durable)
          return false;
        s.let_go = true;
        if (s.dnsmasq_alive)
          s.reactor->release(s.dnsmasq);
        s.dnsmasq_alive = false;
        return true;
      },
  };
}

}  // namespace

NetworkActor spawn_network(caf::actor_system& system, NetworkPlace place,
                           std::shared_ptr<vmm::Reactor> reactor) {
  return system.spawn(network, std::move(place), std::move(reactor));
}

}  // namespace crosvisor
