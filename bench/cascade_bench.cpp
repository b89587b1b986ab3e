// A thousand clients, each an actor holding the handle of its own VM (crosvm stand-in), are
// killed at once. Every VM must then be stopped (power button over its control socket), reaped
// and its vm actor gone (the moment its CID returns). Reported: the time from the last client
// kill to the last VM gone, and per VM the time from its client's kill to its VM gone (p50, p99).
// The baseline of the same run is the explicit path: each client stops its VM through its handle
// and lets go once it is dead, measured the same way.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <chrono>
#include <cstdio>
#include <map>
#include <stdexcept>
#include <vector>

#include "bench/bench.hpp"
#include "bench/stand_in.hpp"
#include "crosvisor/messages.hpp"
#include "crosvisor/service.hpp"
#include "vmm/reactor.hpp"

namespace crosvisor::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct ClientState {
  VmHandle handle;
  bool leaving = false;
};

// Creates its VM, holds the handle, passes events on to `watcher`. (stop_atom): stops the VM
// through the handle and, once it is dead, lets go (quits, dropping the handle).
caf::behavior client_behavior(caf::stateful_actor<ClientState>* self, ServiceActor service,
                              VmSpec spec, caf::actor watcher) {
  self->request(service, caf::infinite, create_atom::value, std::move(spec),
                caf::actor_cast<caf::actor>(self))
      .then([=](VmHandle handle) { self->state.handle = std::move(handle); });
  return {
      [=](const VmEvent& event) {
        self->send(watcher, event);
        if (event.state == VmState::dead && self->state.leaving)
          self->quit();
      },
      [=](stop_atom) {
        self->state.leaving = true;
        self->send(self->state.handle, stop_atom::value);
      },
  };
}

struct Figures {
  double last_to_last_ms = 0;  // last kill (or stop) to the last VM gone
  double p50_ms = 0;
  double p99_ms = 0;
};

// One round: N clients and VMs; `kill_clients` chooses between killing every client and asking
// each to stop its VM.
Figures round(const Options& options, bool kill_clients, int number) {
  caf::actor_system_config config;
  caf::actor_system system{config};
  auto service =
      spawn_service(system, stand_in_service_options(options, "cascade-" + std::to_string(number)));
  caf::scoped_actor watcher{system};

  std::vector<caf::actor> clients;
  for (int i = 0; i < options.vms; ++i) {
    clients.push_back(system.spawn(client_behavior, service, stand_in_spec("c-", i, options),
                                   caf::actor_cast<caf::actor>(watcher)));
  }
  int ready = 0;
  while (ready < options.vms) {
    watcher->receive(
        [&](const VmEvent& event) {
          if (event.state == VmState::ready)
            ++ready;
          else if (event.state == VmState::dead)
            throw std::runtime_error(event.vm + " died early: " + event.detail);
        },
        caf::after(std::chrono::seconds(60)) >>
            [&] { throw std::runtime_error("cascade: no event for 60 s"); });
  }

  // The VMs' own actors, by client index, watched until each is gone.
  std::vector<VmActor> vms;
  watcher->request(service, std::chrono::seconds(10), list_atom::value)
      .receive([&](const std::vector<VmActor>& listed) { vms = listed; },
               [&](caf::error& error) { throw std::runtime_error(system.render(error)); });
  std::map<caf::actor_addr, int> index_of;
  for (const auto& vm : vms) {
    watcher->request(vm, std::chrono::seconds(10), info_atom::value)
        .receive(
            [&](const VmInfo& info) { index_of[vm.address()] = std::stoi(info.name.substr(2)); },
            [&](caf::error& error) { throw std::runtime_error(system.render(error)); });
    watcher->monitor(vm);
  }
  vms.clear();

  std::vector<Clock::time_point> asked(clients.size());
  for (std::size_t i = 0; i < clients.size(); ++i) {
    asked[i] = Clock::now();
    if (kill_clients) {
      caf::anon_send_exit(clients[i], caf::exit_reason::kill);
    } else {
      caf::anon_send(clients[i], stop_atom::value);
    }
  }
  const auto last_asked = Clock::now();
  std::vector<double> latencies;
  Clock::time_point last_gone;
  while (latencies.size() < static_cast<std::size_t>(options.vms)) {
    watcher->receive(
        [&](const caf::down_msg& down) {
          last_gone = Clock::now();
          const int i = index_of.at(down.source);
          latencies.push_back(
              std::chrono::duration<double, std::milli>(last_gone - asked[i]).count());
        },
        [](const VmEvent&) {},
        caf::after(std::chrono::seconds(60)) >>
            [&] { throw std::runtime_error("cascade: a VM is still there after 60 s"); });
  }
  clients.clear();
  std::sort(latencies.begin(), latencies.end());
  Figures figures;
  figures.last_to_last_ms =
      std::chrono::duration<double, std::milli>(last_gone - last_asked).count();
  figures.p50_ms = latencies[latencies.size() / 2];
  figures.p99_ms = latencies[latencies.size() * 99 / 100];
  watcher->send_exit(service, caf::exit_reason::user_shutdown);
  return figures;
}

}  // namespace

int cascade_scenario(const Options& options_in) {
  const Options options = prepare_stand_in(options_in);
  const QuietLogs quiet;
  const Figures stopped = round(options, false, 0);
  const Figures killed = round(options, true, 1);
  std::printf(
      "cascade: %d clients, each holding its own VM (crosvm stand-in); until every vm "
      "actor is gone (VM reaped, CID returned)\n",
      options.vms);
  std::printf("| | last request to last VM gone | per VM p50 | per VM p99 |\n|---|---|---|---|\n");
  std::printf("| clients stop their VMs, then let go (baseline) | %.0f ms | %.0f ms | %.0f ms |\n",
              stopped.last_to_last_ms, stopped.p50_ms, stopped.p99_ms);
  std::printf("| clients killed (cascade) | %.0f ms | %.0f ms | %.0f ms |\n",
              killed.last_to_last_ms, killed.p50_ms, killed.p99_ms);
  std::printf("| ratio | %.2f | %.2f | %.2f |\n", killed.last_to_last_ms / stopped.last_to_last_ms,
              killed.p50_ms / stopped.p50_ms, killed.p99_ms / stopped.p99_ms);
  return 0;
}

}  // namespace crosvisor::bench
