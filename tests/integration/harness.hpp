// One supervisor inside the test process, and a client actor that records what it hears, as an
// embedding application would use crosvisor.
#pragma once

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "crosvisor/messages.hpp"
#include "crosvisor/service.hpp"
#include "support/temp_dir.hpp"
#include "vmm/reactor.hpp"

namespace crosvisor::test {

// A TCG boot takes ~5 s; leave room for a loaded machine.
inline constexpr std::chrono::seconds kEventDeadline{90};

struct Harness {
  TempDir runtime;
  caf::actor_system_config config;
  caf::actor_system system{config};
  std::shared_ptr<vmm::Reactor> reactor = std::make_shared<vmm::Reactor>();
  ServiceActor service = spawn_service(system, make_service_options(runtime.path(), reactor));
  caf::scoped_actor client{system};
  std::vector<std::string> console;
  // The client's handles: a VM lives while one does.
  std::vector<VmHandle> handles;

  ~Harness();

  // Creates a VM for the client and keeps its handle.
  VmHandle create(const VmSpec& spec);
  // The same, or the service's refusal.
  Expected<VmHandle> try_create(const VmSpec& spec);
  // The next state change, collecting console lines on the way; fails the test at the deadline.
  VmEvent next_event();
  // Skips state changes until `state` and returns that event; fails on an earlier death.
  VmEvent await_state(VmState state);
  bool console_has(const std::string& text) const;
};

}  // namespace crosvisor::test
