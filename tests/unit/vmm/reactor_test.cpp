// The reactor with real children: console flow control.
#include "vmm/reactor.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <thread>

#include "support/processes.hpp"
#include "vmm/vmm_launch.hpp"

using namespace crosvisor;
using namespace std::chrono_literals;

TEST_CASE(
    "a console nobody consumes is read no further than the in-flight limit, and the rest "
    "comes once it is consumed") {
  constexpr std::size_t kLimit = vmm::Reactor::kConsoleInFlight;
  // Far more than the limit, the pipe and a read buffer hold together: the child must wait.
  constexpr std::size_t kLines = 10 * kLimit;
  vmm::Reactor reactor;
  std::atomic<std::size_t> delivered{0};
  std::atomic<bool> exited{false};
  std::atomic<bool> failed{false};
  vmm::ChildObserver observer;
  observer.spawned = [](pid_t) {};
  observer.started = [] {};
  observer.launch_failed = [&](Error) { failed = true; };
  observer.console_line = [&](std::string) { ++delivered; };
  observer.vmm_output_line = [](std::string) {};
  observer.guest_notice = [](lifecycle::GuestNotice) {};
  observer.exited = [&](process::ExitStatus) { exited = true; };
  const auto child = reactor.launch(
      [&]() -> Expected<vmm::VmmLaunch> {
        vmm::VmmLaunch launch;
        launch.control.protocol = vmm::ControlProtocol::crosvm;  // started at once, no handshake
        if (auto streams = vmm::plan_standard_streams(launch, vmm::LaunchContext{}); !streams)
          return std::unexpected(streams.error());
        auto console = vmm::plan_console(launch, vmm::LaunchContext{});
        if (!console)
          return std::unexpected(console.error());
        launch.request.binary = "/bin/sh";
        launch.request.args = {"-c", "i=0; while [ $i -lt " + std::to_string(kLines) +
                                         " ]; do echo $i >&" + std::to_string(*console) +
                                         "; i=$((i+1)); done"};
        return launch;
      },
      observer);
  // Delivered lines stop short of the end, and the child waits on its console.
  REQUIRE(test::eventually([&] { return delivered >= kLimit; }, 20s));
  std::size_t seen = 0;
  REQUIRE(test::eventually(
      [&] {
        const std::size_t now = delivered;
        const bool still = now == seen;
        seen = now;
        return still;
      },
      20s, 300ms));
  CHECK(delivered < kLimit + 4096);  // at most one read past the limit
  CHECK_FALSE(exited);
  CHECK_FALSE(failed);
  // Consumed as a VM actor does, in batches: every line comes, and the child ends.
  std::size_t acknowledged = 0;
  REQUIRE(test::eventually(
      [&] {
        const std::size_t now = delivered;
        if (now > acknowledged) {
          reactor.console_consumed(child, now - acknowledged);
          acknowledged = now;
        }
        return exited.load();
      },
      60s));
  CHECK(delivered == kLines);
}
