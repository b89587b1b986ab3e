// A fleet of 1 000 VMs on the crosvm stand-in, launched by the fleet actor with its default
// concurrency until every VM is ready. Reported: time to all-ready, VMs ready per second, and the
// supervisor's heap per VM while the fleet is up. Baseline of the same run: the same 1 000 VMs
// created by one client through the service as fast as it can, without start order or a
// concurrency limit.
#include <malloc.h>
#include <spdlog/spdlog.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <thread>

#include "actors/fleet_actor.hpp"
#include "bench/bench.hpp"
#include "bench/stand_in.hpp"
#include "crosvisor/messages.hpp"
#include "crosvisor/service.hpp"
#include "vmm/reactor.hpp"

namespace crosvisor::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Figures {
  double to_ready_s = 0;
  double heap_kib_per_vm = 0;
};

struct Supervisor {
  caf::actor_system_config config;
  caf::actor_system system{config};
  ServiceActor service;
  Supervisor(const Options& options, const std::string& tag) {
    service = spawn_service(system, stand_in_service_options(options, tag));
  }
};

Figures fleet_round(const Options& options) {
  Supervisor supervisor(options, "fleet");
  caf::scoped_actor self{supervisor.system};
  config::FleetSpec fleet;
  fleet.name = "bench";
  fleet.concurrency = config::default_concurrency();
  for (int i = 0; i < options.vms; ++i) {
    config::FleetVm vm;
    vm.spec = stand_in_spec("f-", i, options);
    vm.group = "f-{index}";
    fleet.vms.push_back(std::move(vm));
  }
  const double heap_before = heap_in_use_kib();
  const auto start = Clock::now();
  auto actor = spawn_fleet(supervisor.system, supervisor.service, std::move(fleet));
  Figures figures;
  for (;;) {
    FleetStatus status;
    self->request(actor, std::chrono::seconds(10), fleet_status_atom::value)
        .receive([&](const FleetStatus& s) { status = s; },
                 [&](caf::error& e) { throw std::runtime_error(supervisor.system.render(e)); });
    if (status.failed > 0)
      throw std::runtime_error("fleet: a VM failed");
    if (status.ready == static_cast<std::size_t>(options.vms))
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  figures.to_ready_s = std::chrono::duration<double>(Clock::now() - start).count();
  figures.heap_kib_per_vm = (heap_in_use_kib() - heap_before) / options.vms;
  self->request(actor, caf::infinite, stop_atom::value)
      .receive([](const FleetStatus&) {}, [](caf::error&) {});
  self->send_exit(supervisor.service, caf::exit_reason::user_shutdown);
  return figures;
}

Figures direct_round(const Options& options) {
  Supervisor supervisor(options, "direct");
  caf::scoped_actor self{supervisor.system};
  std::vector<VmHandle> handles;
  const auto start = Clock::now();
  for (int i = 0; i < options.vms; ++i) {
    self->request(supervisor.service, caf::infinite, create_atom::value,
                  stand_in_spec("d-", i, options), caf::actor_cast<caf::actor>(self))
        .receive([&](VmHandle handle) { handles.push_back(handle); },
                 [&](caf::error& e) { throw std::runtime_error(supervisor.system.render(e)); });
  }
  int ready = 0;
  while (ready < options.vms) {
    self->receive([&](const VmEvent& event) {
      if (event.state == VmState::ready)
        ++ready;
      else if (event.state == VmState::dead)
        throw std::runtime_error(event.vm + " died early");
    });
  }
  Figures figures;
  figures.to_ready_s = std::chrono::duration<double>(Clock::now() - start).count();
  for (const auto& handle : handles)
    self->send(handle, stop_atom::value);
  int dead = 0;
  while (dead < options.vms) {
    self->receive([&](const VmEvent& event) { dead += event.state == VmState::dead; });
  }
  self->send_exit(supervisor.service, caf::exit_reason::user_shutdown);
  return figures;
}

}  // namespace

int fleet_scenario(const Options& options_in) {
  const Options options = prepare_stand_in(options_in);
  const QuietLogs quiet;
  const Figures direct = direct_round(options);
  const Figures fleet = fleet_round(options);
  std::printf("fleet: %d VMs on the crosvm stand-in, until every VM is ready\n", options.vms);
  std::printf("| | to all ready | VMs ready/s |\n|---|---|---|\n");
  std::printf("| one client, no order or limit (baseline) | %.2f s | %.0f |\n", direct.to_ready_s,
              options.vms / direct.to_ready_s);
  std::printf("| fleet actor, concurrency %zu | %.2f s | %.0f |\n", config::default_concurrency(),
              fleet.to_ready_s, options.vms / fleet.to_ready_s);
  std::printf("| ratio | %.2f | |\n", fleet.to_ready_s / direct.to_ready_s);
  std::printf("fleet: supervisor heap %.1f KiB per VM while the fleet is up\n",
              fleet.heap_kib_per_vm);
  return 0;
}

}  // namespace crosvisor::bench
