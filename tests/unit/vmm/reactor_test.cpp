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
    "a console nobody consumes is read no further than the in-flight limit, what waits comes "
    "as one block, and the rest once it is consumed") {
  constexpr std::size_t kLimit = vmm::Reactor::kConsoleInFlight;
  // Far more than the limit, the pipe and a read buffer hold together: the child must wait.
  constexpr std::size_t kLines = 10 * kLimit / 11;  // "0123456789\n": 11 bytes each
  constexpr std::size_t kBytes = kLines * 11;
  vmm::Reactor reactor;
  std::atomic<std::size_t> delivered{0};  // bytes
  std::atomic<bool> whole_lines{true};
  std::atomic<bool> exited{false};
  std::atomic<bool> failed{false};
  vmm::ChildObserver observer;
  observer.spawned = [](pid_t) {};
  observer.started = [] {};
  observer.launch_failed = [&](Error) { failed = true; };
  observer.console_text = [&](std::string lines) {
    whole_lines = whole_lines && !lines.empty() && lines.back() == '\n';
    delivered += lines.size();
  };
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
        launch.request.args = {"-c", "yes 0123456789 | head -n " + std::to_string(kLines) + " >&" +
                                         std::to_string(*console)};
        return launch;
      },
      observer);
  // Nothing is consumed: one block is delivered, what follows waits in the reactor up to the
  // limit, and then the child waits on its console (it would have written everything by now).
  REQUIRE(test::eventually([&] { return delivered > 0; }, 20s));
  std::this_thread::sleep_for(2s);
  const std::size_t first = delivered;
  CHECK(first <= 64 * 1024 + 11);  // one read, and the line it finished
  CHECK_FALSE(exited);
  CHECK_FALSE(failed);
  // Consumed as a VM actor does, block by block: what waited comes as one block, as large as
  // the limit allowed; then everything, and the child ends.
  reactor.console_consumed(child, first);
  REQUIRE(test::eventually([&] { return delivered > first; }, 20s));
  CHECK(delivered - first >= kLimit - 2 * (64 * 1024 + 11));
  std::size_t acknowledged = first;
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
  CHECK(delivered == kBytes);
  CHECK(whole_lines);
}

TEST_CASE("VMMs are started through the spawner, and a spawner that was killed is replaced") {
  vmm::Reactor reactor("/proc/self/exe");  // this test executable serves as one
  const auto run = [&](const std::string& script) {
    std::atomic<pid_t> pid{0};
    std::atomic<bool> failed{false}, exited{false};
    vmm::ChildObserver observer;
    observer.spawned = [&](pid_t spawned) { pid = spawned; };
    observer.started = [] {};
    observer.launch_failed = [&](Error) { failed = true; };
    observer.console_text = [](std::string) {};
    observer.vmm_output_line = [](std::string) {};
    observer.guest_notice = [](lifecycle::GuestNotice) {};
    observer.exited = [&](process::ExitStatus) { exited = true; };
    reactor.launch(
        [&]() -> Expected<vmm::VmmLaunch> {
          vmm::VmmLaunch launch;
          launch.control.protocol = vmm::ControlProtocol::crosvm;
          if (auto streams = vmm::plan_standard_streams(launch, vmm::LaunchContext{}); !streams)
            return std::unexpected(streams.error());
          launch.request.binary = "/bin/sh";
          launch.request.args = {"-c", script};
          return launch;
        },
        observer);
    REQUIRE(test::eventually([&] { return exited || failed; }, 20s));
    CHECK_FALSE(failed);
    return pid.load();
  };
  const auto our_spawners = [] {
    const auto spawners = test::processes_with_cmdline("--crosvisor-spawner");
    std::vector<pid_t> ours;
    for (pid_t pid : test::children_of(::getpid())) {
      if (std::find(spawners.begin(), spawners.end(), pid) != spawners.end())
        ours.push_back(pid);
    }
    return ours;
  };
  CHECK(our_spawners().empty());  // none until the first launch
  run("exit 0");
  const auto first = our_spawners();
  REQUIRE(first.size() == 1);
  // Killed between launches: reaped at once (no zombie left), and replaced by the next launch.
  ::kill(first.front(), SIGKILL);
  CHECK(test::eventually(
      [&] {
        const auto children = test::children_of(::getpid());
        return std::find(children.begin(), children.end(), first.front()) == children.end();
      },
      5s));
  run("exit 0");
  const auto second = our_spawners();
  REQUIRE(second.size() == 1);
  CHECK(second.front() != first.front());
}
