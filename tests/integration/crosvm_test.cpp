// crosvm VMs through the service, run by the crosvm stand-in (testing/fake_crosvm), which checks
// our argv, fds and composite disks as crosvm would and exits with crosvm's codes on command.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "crosvisor/messages.hpp"
#include "integration/guest.hpp"
#include "integration/harness.hpp"
#include "process/launch.hpp"
#include "support/processes.hpp"
#include "support/subprocess.hpp"
#include "vmm/vmm_launch.hpp"

using namespace crosvisor;
using namespace std::chrono_literals;

namespace {

pid_t pid_of(const VmEvent& running) {
  REQUIRE(running.state == VmState::running);
  return std::stoi(running.detail.substr(4));
}

VmEvent run_to_death(test::Harness& h, const VmSpec& spec) {
  h.create(spec);
  return h.await_state(VmState::dead);
}

}  // namespace

TEST_CASE("every crosvm exit code is reported as its death reason") {
  test::Harness h;
  const std::pair<const char*, DeathReason> cases[] = {
      {"fake_crosvm.exit=0", DeathReason::shutdown},
      {"fake_crosvm.exit=32", DeathReason::reboot},
      {"fake_crosvm.exit=33", DeathReason::crash},
      {"fake_crosvm.exit=34", DeathReason::guest_panic},
      {"fake_crosvm.exit=36", DeathReason::watchdog_reboot},
      {"fake_crosvm.exit=1", DeathReason::error},  // after the guest ran
      {"fake_crosvm.fail=1", DeathReason::start_failed},
      {"fake_crosvm.fail=35", DeathReason::start_failed},
      {"fake_crosvm.exit=7", DeathReason::unknown},
  };
  int index = 0;
  for (const auto& [script, reason] : cases) {
    INFO(script);
    const VmEvent dead =
        run_to_death(h, test::fake_crosvm_spec("codes" + std::to_string(index++), script));
    CHECK(dead.reason == reason);
  }
  CHECK(h.console_has("fake-crosvm guest: exiting with 33"));
  CHECK(test::eventually([&] { return h.reactor->live_children() == 0; }, 5s));
}

TEST_CASE("a start failure carries crosvm's own message") {
  test::Harness h;
  const VmEvent dead = run_to_death(h, test::fake_crosvm_spec("failing", "fake_crosvm.fail=1"));
  CHECK(dead.reason == DeathReason::start_failed);
  CHECK(dead.detail == "exit 1: fake-crosvm: failing to start, as the params asked");
}

TEST_CASE("SIGKILL of crosvm is KILLED, and the control socket and private files go with the VM") {
  test::Harness h;
  h.create(test::fake_crosvm_spec("victim", ""));
  const pid_t pid = pid_of(h.await_state(VmState::running));
  h.await_state(VmState::ready);
  const auto run_dirs = [&] {
    std::size_t count = 0;
    for (const auto& entry : std::filesystem::directory_iterator(h.runtime.path()))
      count += entry.path().filename().string().rfind("vm-", 0) == 0;
    return count;
  };
  CHECK(run_dirs() == 1);
  REQUIRE(kill(pid, SIGKILL) == 0);
  const VmEvent dead = h.await_state(VmState::dead);
  CHECK(dead.reason == DeathReason::killed);
  CHECK(test::eventually([&] { return run_dirs() == 0; }, 5s));
}

TEST_CASE("a crosvm stop presses the power button: the guest powers off, SHUTDOWN") {
  test::Harness h;
  auto vm = h.create(test::fake_crosvm_spec("polite", ""));
  h.await_state(VmState::ready);
  h.client->send(vm, stop_atom::value);
  CHECK(h.await_state(VmState::stopping).state == VmState::stopping);
  const VmEvent dead = h.await_state(VmState::dead);
  CHECK(dead.reason == DeathReason::shutdown);
  CHECK(h.console_has("fake-crosvm guest: power button pressed, powering off"));
}

TEST_CASE(
    "a crosvm guest that ignores the power button is stopped through the control socket "
    "once the stop timeout passes") {
  test::Harness h;
  VmSpec spec = test::fake_crosvm_spec("stubborn", "fake_crosvm.powerbtn=ignore");
  spec.stop_timeout = 700ms;
  auto vm = h.create(spec);
  h.await_state(VmState::ready);
  const auto asked = std::chrono::steady_clock::now();
  h.client->send(vm, stop_atom::value);
  const VmEvent dead = h.await_state(VmState::dead);
  const auto took = std::chrono::steady_clock::now() - asked;
  CHECK(dead.reason == DeathReason::killed);
  CHECK(dead.detail == "exit 0 after the guest ignored the stop request for 700 ms");
  CHECK(h.console_has("fake-crosvm guest: ignoring the power button"));
  CHECK(h.console_has("fake-crosvm: stopping on request (the guest is not told)"));
  CHECK(took >= 700ms);
  CHECK(took < 700ms + 1500ms);  // the timeout plus a small margin, not the SIGTERM/SIGKILL path
}

TEST_CASE("crosvm gets raw and composite disks as fds, and the stand-in validates them") {
  test::Harness h;
  test::TempDir dir;
  VmSpec spec = test::fake_crosvm_spec("disks", "");
  spec.disks.push_back(RawDisk{dir.write("raw.img", std::string(8192, 'r')), false});
  spec.disks.push_back(
      CompositeDisk{{{"boot", dir.write("boot.img", std::string(4000, 'b')), false},
                     {"data", dir.write("data.img", std::string(8192, 'd')), true}}});
  auto vm = h.create(spec);
  h.await_state(VmState::ready);
  CHECK(h.console_has("block 0: /proc/self/fd/"));
  CHECK(h.console_has("raw, read-only"));
  // header, boot, filler (boot is not sector-aligned), data, footer.
  CHECK(h.console_has("composite, 5 components"));
  h.client->send(vm, stop_atom::value);
  CHECK(h.await_state(VmState::dead).reason == DeathReason::shutdown);
}

TEST_CASE("the crosvm stand-in refuses what crosvm refuses, and fds nobody named") {
  test::TempDir dir;
  const auto run = [&](process::LaunchRequest request) {
    request.binary = FAKE_CROSVM_BINARY;
    auto output = vmm::make_pipe();
    REQUIRE(output.has_value());
    request.fds.set(2, std::move(output->second));
    auto child = process::spawn_child(request);
    REQUIRE(child.has_value());
    siginfo_t info{};
    REQUIRE(waitid(P_PIDFD, static_cast<id_t>(child->pidfd.get()), &info, WEXITED) == 0);
    std::string message(512, '\0');
    message.resize(static_cast<std::size_t>(
        std::max<ssize_t>(0, ::read(output->first.get(), message.data(), message.size()))));
    return std::pair<int, std::string>{info.si_status, message};
  };
  const auto kernel = dir.write("vmlinuz", "kernel");

  process::LaunchRequest unknown;
  unknown.args = {"run", "--no-such-flag", kernel.string()};
  CHECK(run(std::move(unknown)) ==
        std::pair<int, std::string>{35, "Unrecognized argument: --no-such-flag\n"});

  // A control socket that is a stream socket, not a listening seqpacket one.
  process::LaunchRequest stream_socket;
  auto socket = vmm::listen_unix(dir / "stream.sock", SOCK_STREAM);
  REQUIRE(socket.has_value());
  const int socket_fd = stream_socket.fds.add(std::move(*socket));
  stream_socket.args = {"run", "--socket", process::FdPlan::proc_path(socket_fd), kernel.string()};
  const auto refused = run(std::move(stream_socket));
  CHECK(refused.first == 1);
  CHECK_THAT(refused.second, Catch::Contains("not a SOCK_SEQPACKET socket"));

  // A named fd that was never handed over.
  process::LaunchRequest missing;
  auto listener = vmm::listen_unix(dir / "c.sock", SOCK_SEQPACKET);
  REQUIRE(listener.has_value());
  const int control_fd = missing.fds.add(std::move(*listener));
  missing.args = {"run", "--socket", process::FdPlan::proc_path(control_fd), "/proc/self/fd/9"};
  const auto absent = run(std::move(missing));
  CHECK(absent.first == 1);
  CHECK_THAT(absent.second, Catch::Contains("fd 9 is not open"));

  // An fd handed over but named nowhere: the supervisor leaked it.
  process::LaunchRequest leaky;
  auto seqpacket = vmm::listen_unix(dir / "l.sock", SOCK_SEQPACKET);
  REQUIRE(seqpacket.has_value());
  const int leaky_control = leaky.fds.add(std::move(*seqpacket));
  const int leaked = leaky.fds.add(UniqueFd(::open(kernel.c_str(), O_RDONLY | O_CLOEXEC)));
  leaky.args = {"run", "--socket", process::FdPlan::proc_path(leaky_control), kernel.string()};
  const auto leak = run(std::move(leaky));
  CHECK(leak.first == 1);
  CHECK_THAT(leak.second, Catch::Contains("fd " + std::to_string(leaked) +
                                          " was inherited but is named nowhere"));
}

TEST_CASE(
    "a supervisor killed with SIGKILL takes every VMM child with it, and SIGTERM stops them") {
  test::TempDir dir;
  // The files name no VMM binary: the daemon's --crosvm flag does.
  std::vector<std::string> command{CROSVISORD_BINARY,
                                   "--runtime-dir",
                                   (dir / "run").string(),
                                   "--socket",
                                   (dir / "control.sock").string(),
                                   "--crosvm",
                                   FAKE_CROSVM_BINARY};
  for (int i = 0; i < 5; ++i) {
    const std::string name = "fleet-" + std::to_string(i);
    command.push_back(dir.write(name + ".toml", test::fake_crosvm_toml(name, "", false)).string());
  }
  const auto private_dirs = [&] {
    std::vector<std::filesystem::path> found;
    for (const auto& entry : std::filesystem::directory_iterator(dir / "run")) {
      if (entry.path().filename().string().rfind("run-", 0) == 0)
        found.push_back(entry.path());
    }
    return found;
  };
  const auto children = [&] { return test::processes_with_cmdline("--name fleet-"); };

  test::Subprocess killed(command);
  REQUIRE(test::eventually([&] { return children().size() == 5; }, 20s));
  const std::vector<pid_t> pids = children();
  killed.signal(SIGKILL);
  CHECK(killed.wait_exit(10s) == 128 + SIGKILL);
  for (const pid_t pid : pids) {
    INFO("VMM pid " << pid);
    CHECK(test::eventually([&] { return !test::process_alive(pid); }, 10s));
  }
  // The dead daemon's sockets and files outlive it, until the next crosvisor process starts.
  const auto abandoned = private_dirs();
  CHECK(abandoned.size() == 1);

  test::Subprocess stopped(command);
  REQUIRE(test::eventually([&] { return children().size() == 5; }, 20s));
  for (const auto& stale : abandoned)
    CHECK_FALSE(std::filesystem::exists(stale));
  REQUIRE(stopped.wait_for_line("supervising 5 VM(s) of its own", 20s));
  stopped.signal(SIGTERM);
  CHECK(stopped.wait_exit(20s) == 0);
  CHECK(children().empty());
  CHECK(private_dirs().empty());
  CHECK(std::filesystem::exists(dir / "logs" / "fleet-0.log"));  // beside the socket
  for (int i = 0; i < 5; ++i)
    CHECK_THAT(stopped.output(),
               Catch::Contains("vm fleet-" + std::to_string(i) + ": dead, SHUTDOWN"));
}

TEST_CASE("a VM built from fds its client opened: the supervisor never opens the client's paths") {
  test::Harness h;
  test::TempDir dir;
  const auto open_file = [](const std::filesystem::path& path, int flags) {
    const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
    REQUIRE(fd >= 0);
    return fd;
  };
  VmSpec spec = test::fake_crosvm_spec("handed", "");
  spec.kernel = spec.hand_over(open_file(spec.kernel, O_RDONLY));
  const auto data = dir.write("data.img", std::string(8192, 'd'));
  const auto boot = dir.write("boot.img", std::string(4096, 'b'));
  spec.disks.push_back(RawDisk{spec.hand_over(open_file(data, O_RDWR)), true});
  spec.disks.push_back(CompositeDisk{{{"boot", spec.hand_over(open_file(boot, O_RDONLY)), false}}});
  // The paths are gone: only the fds lead to the files now.
  std::filesystem::remove(data);
  std::filesystem::remove(boot);
  auto vm = h.create(spec);
  h.await_state(VmState::ready);
  CHECK(h.console_has("raw, read-write"));
  CHECK(h.console_has("composite, 3 components"));
  h.client->send(vm, stop_atom::value);
  CHECK(h.await_state(VmState::dead).reason == DeathReason::shutdown);

  // A read-only fd cannot back a writable disk: refused before anything starts.
  VmSpec wrong = test::fake_crosvm_spec("readonly", "");
  const auto image = dir.write("ro.img", std::string(4096, 'r'));
  wrong.disks.push_back(RawDisk{wrong.hand_over(open_file(image, O_RDONLY)), true});
  h.create(wrong);
  const VmEvent refused = h.await_state(VmState::dead);
  CHECK(refused.reason == DeathReason::start_failed);
  CHECK_THAT(refused.detail, Catch::Contains("the handed fd is read-only"));
}
