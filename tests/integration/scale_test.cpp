// One supervisor, a thousand VMs (crosvm stand-in): started, ready, stopped and reaped, with
// nothing left behind — no process, no zombie, no fd.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <map>

#include "crosvisor/messages.hpp"
#include "integration/guest.hpp"
#include "integration/harness.hpp"
#include "process/signals.hpp"
#include "support/processes.hpp"

using namespace crosvisor;
using namespace std::chrono_literals;

namespace {

// CROSVISOR_SCALE_VMS overrides the count, to look at one VM's footprint in isolation.
const int kVms =
    std::getenv("CROSVISOR_SCALE_VMS") ? std::atoi(std::getenv("CROSVISOR_SCALE_VMS")) : 1000;

// Waits until `count` VMs have reached `state`, counting every event on the way.
void await_all(test::Harness& h, VmState state, int count,
               std::map<DeathReason, int>* reasons = nullptr) {
  int reached = 0;
  while (reached < count) {
    const VmEvent event = h.next_event();
    if (event.state == VmState::dead && reasons)
      ++(*reasons)[*event.reason];
    if (event.state == state) {
      ++reached;
    } else {
      INFO(event.vm << ": " << to_string(event.state) << " " << event.detail);
      REQUIRE(event.state != VmState::dead);
    }
  }
}

}  // namespace

TEST_CASE("a thousand crosvm VMs start and stop under one supervisor, leaving nothing behind") {
  process::raise_fd_limit();
  const auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::warn);  // four lines per VM would drown the test log
  {
    test::Harness h;
    // Measured once the supervisor is up: its threads, its reactor and the CID registry (a
    // detached actor that opens its state file as it starts: asking it something waits for that)
    // are part of the baseline.
    h.client->request(h.service, 10s, in_use_atom::value)
        .receive([](std::uint64_t) {}, [&](caf::error& error) { FAIL(h.system.render(error)); });
    const auto fds_before = test::open_fds(getpid()).size();

    std::vector<VmActor> vms;
    for (int i = 0; i < kVms; ++i) {
      VmSpec spec = test::fake_crosvm_spec("scale-" + std::to_string(i), "");
      spec.debug = DebugLevel::none;  // the console is still read, for the ready pattern
      vms.push_back(h.create(spec));
    }
    await_all(h, VmState::ready, kVms);
    CHECK(h.reactor->live_children() == static_cast<std::size_t>(kVms));
    CHECK(test::children_of(getpid()).size() == static_cast<std::size_t>(kVms));

    for (const auto& vm : vms)
      h.client->send(vm, stop_atom::value);
    std::map<DeathReason, int> reasons;
    await_all(h, VmState::dead, kVms, &reasons);
    CHECK(reasons[DeathReason::shutdown] == kVms);

    CHECK(h.reactor->live_children() == 0);
    CHECK(test::children_of(getpid()).empty());  // reaped: not even a zombie
    CHECK(test::processes_with_cmdline("--name scale-").empty());
    vms.clear();
    h.handles.clear();  // dead VMs keep their CIDs while a handle remains
    // The CID locks are released as the vm actors go down, a moment after their last event.
    CHECK(test::eventually([&] { return test::open_fds(getpid()).size() == fds_before; }, 10s));
    std::string targets;
    for (const int fd : test::open_fds(getpid())) {
      std::error_code ec;
      targets += " " + std::to_string(fd) + "->" +
                 std::filesystem::read_symlink("/proc/self/fd/" + std::to_string(fd), ec).string();
    }
    INFO("fds before " << fds_before << ", after:" << targets);
    CHECK(test::open_fds(getpid()).size() == fds_before);
  }
  spdlog::set_level(level);
}

namespace {

// A client of the application: it creates its VM, holds the handle, and tells `watcher` what it
// hears.
struct ClientState {
  VmHandle handle;
};

caf::behavior client_behavior(caf::stateful_actor<ClientState>* self, ServiceActor service,
                              VmSpec spec, caf::actor watcher) {
  self->request(service, caf::infinite, create_atom::value, std::move(spec),
                caf::actor_cast<caf::actor>(self))
      .then([=](VmHandle handle) { self->state.handle = std::move(handle); });
  return {[=](const VmEvent& event) { self->send(watcher, event); }};
}

}  // namespace

TEST_CASE("a thousand clients killed at once take their thousand VMs down and return every CID") {
  process::raise_fd_limit();
  const auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::warn);
  {
    test::Harness h;
    const auto in_use = [&] {
      std::uint64_t count = 0;
      h.client->request(h.service, 10s, in_use_atom::value)
          .receive([&](std::uint64_t n) { count = n; },
                   [&](caf::error& error) { FAIL(h.system.render(error)); });
      return count;
    };
    const auto in_use_before = in_use();
    std::vector<caf::actor> clients;
    for (int i = 0; i < kVms; ++i) {
      VmSpec spec = test::fake_crosvm_spec("cascade-" + std::to_string(i), "");
      spec.debug = DebugLevel::none;
      clients.push_back(h.system.spawn(client_behavior, h.service, std::move(spec),
                                       caf::actor_cast<caf::actor>(h.client)));
    }
    await_all(h, VmState::ready, kVms);
    CHECK(in_use() == in_use_before + static_cast<std::uint64_t>(kVms));

    // The VMs' own actors, watched for the moment each is gone (dead and unreferenced).
    std::vector<VmActor> vms;
    h.client->request(h.service, 10s, list_atom::value)
        .receive([&](const std::vector<VmActor>& listed) { vms = listed; },
                 [&](caf::error& error) { FAIL(h.system.render(error)); });
    REQUIRE(vms.size() == static_cast<std::size_t>(kVms));
    for (const auto& vm : vms)
      h.client->monitor(vm);
    vms.clear();

    for (const auto& client : clients)
      caf::anon_send_exit(client, caf::exit_reason::kill);
    clients.clear();
    int gone = 0;
    while (gone < kVms) {
      bool timed_out = false;
      h.client->receive([&](const caf::down_msg&) { ++gone; }, [](const VmEvent&) {},
                        caf::after(60s) >> [&] { timed_out = true; });
      REQUIRE_FALSE(timed_out);
    }
    CHECK(h.reactor->live_children() == 0);
    CHECK(test::children_of(getpid()).empty());
    CHECK(test::processes_with_cmdline("--name cascade-").empty());
    // The registry hears of each vm actor's end on its own, a moment after we do.
    CHECK(test::eventually([&] { return in_use() == in_use_before; }, 10s));
  }
  spdlog::set_level(level);
}
