#include "actors/client_proxy.hpp"

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/monitors.hpp"

namespace crosvisor {
namespace {

struct ProxyState {
  static inline const char* name = "crosvisor.client_proxy";
  // Not an aggregate: CAF builds a state from the actor's pointer whenever it can, and C++20
  // would let that pointer initialise the first member, a typed handle.
  ProxyState() = default;
  VmActorImpl vm;       // strong: the vm actor lives while a proxy does
  caf::actor client;    // where events go; may be invalid
  bool console = true;  // pass console lines too (a client that only watches states says not)
  caf::actor_addr self_address;
  // A client outlives many of its handles (a fleet restarting a VM, a session running many).
  ~ProxyState() { withdraw_monitor(self_address, client); }
};

using Proxy = ClientProxyActor::stateful_pointer<ProxyState>;

ClientProxyActor::behavior_type proxy_behavior(Proxy self, VmActorImpl vm, caf::actor client) {
  self->state.vm = std::move(vm);
  self->state.client = std::move(client);
  self->state.self_address = self->address();
  if (self->state.client) {
    self->monitor(self->state.client);
    self->set_down_handler([=](const caf::down_msg& down) {
      if (down.source == self->state.client.address())
        self->quit(caf::exit_reason::user_shutdown);  // the client is gone: so is its handle
    });
  }
  return {
      // From the vm actor: events for the client (anonymous: each names its VM).
      [=](const VmEvent& event) {
        if (self->state.client)
          caf::anon_send(self->state.client, event);
      },
      [=](const ConsoleText& text) {
        if (self->state.client && self->state.console)
          caf::anon_send(self->state.client, text);
      },
      [=](events_atom) {
        if (std::exchange(self->state.console, false))
          self->send(self->state.vm, quiet_atom::value, self->address());
      },
      // From the client: requests for the VM.
      [=](stop_atom) { self->send<caf::message_priority::high>(self->state.vm, stop_atom::value); },
      [=](stop_atom, kill_atom) {
        self->send<caf::message_priority::high>(self->state.vm, stop_atom::value, kill_atom::value);
      },
      [=](stop_atom, std::uint32_t timeout_ms) {
        self->send(self->state.vm, stop_atom::value, timeout_ms);
      },
      [=](info_atom) { return self->delegate(self->state.vm, info_atom::value); },
      [=](stats_atom) { return self->delegate(self->state.vm, stats_atom::value); },
      [=](logs_atom, std::uint32_t count) {
        return self->delegate(self->state.vm, logs_atom::value, count);
      },
      [=](subscribe_atom, caf::actor subscriber) {
        self->send(self->state.vm, subscribe_atom::value, std::move(subscriber));
      },
      [=](subscribe_atom, caf::actor subscriber, events_atom) {
        self->send(self->state.vm, subscribe_atom::value, std::move(subscriber),
                   events_atom::value);
      },
      [=](console_attach_atom, caf::actor viewer, bool write, bool force) {
        return self->delegate(self->state.vm, console_attach_atom::value, std::move(viewer), write,
                              force);
      },
      [=](console_input_atom, caf::actor writer, std::string bytes) {
        self->send<caf::message_priority::high>(self->state.vm, console_input_atom::value,
                                                std::move(writer), std::move(bytes));
      },
      [=](console_detach_atom, caf::actor viewer) {
        self->send(self->state.vm, console_detach_atom::value, std::move(viewer));
      },
      [=](dump_atom) { return self->delegate(self->state.vm, dump_atom::value); },
      [=](dump_atom, DumpInto into) {
        return self->delegate(self->state.vm, dump_atom::value, std::move(into));
      },
      [=](dup_atom, caf::actor other_client) -> VmHandle {
        return spawn_client_proxy(self->system(), self->state.vm, std::move(other_client));
      },
  };
}

}  // namespace

ClientProxyActor spawn_client_proxy(caf::actor_system& system, VmActorImpl vm, caf::actor client) {
  const bool no_client = !client;
  auto proxy = system.spawn(proxy_behavior, vm, std::move(client));
  // A strong reference in the message, so that the proxy is alive (or properly down) when the
  // vm actor monitors it; the vm actor keeps only its address, never keeping a handle alive.
  caf::anon_send(vm, attach_atom::value, proxy);
  if (no_client)  // nobody to pass console lines to
    caf::anon_send(vm, quiet_atom::value, proxy.address());
  return proxy;
}

}  // namespace crosvisor
