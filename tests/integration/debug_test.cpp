// Debuggable VMs as AVF has them (issue 16): boot hang-up detection, the interactive console,
// crash dumps and the gdb stub, on real guests under QEMU and on the crosvm stand-in.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>
#include <sstream>

#include "core/exit_codes.hpp"
#include "integration/daemon_process.hpp"
#include "integration/guest.hpp"
#include "integration/on_demand.hpp"
#include "support/processes.hpp"
#include "support/pty_process.hpp"
#include "support/subprocess.hpp"
#include "support/temp_dir.hpp"

using namespace crosvisor;
using namespace std::chrono_literals;

namespace {

constexpr auto kBoot = 90s;

pid_t vmm_pid(test::Subprocess& vm) {
  auto line = vm.wait_for_line(": running: pid ", kBoot);
  REQUIRE(line.has_value());
  return std::stoi(line->substr(line->find("pid ") + 4));
}

// The test guest's VM file, waiting for a line the guest never prints.
std::string never_ready_toml(const std::string& name, const std::string& extra_keys) {
  std::string text = test::guest_toml(name, "", extra_keys);
  text.replace(text.find(test::kGuestReady), std::strlen(test::kGuestReady),
               "a line this guest never prints");
  return text;
}

// A TCP port free on loopback right now.
std::uint16_t free_tcp_port() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  socklen_t length = sizeof(address);
  REQUIRE(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &length) == 0);
  return ntohs(address.sin_port);
}

}  // namespace

TEST_CASE("a guest that never prints its ready line is killed after ready_timeout_s: HANGUP") {
  test::require_guest();
  test::OnDemandSocket own;
  const auto file = own.dir.write("hung.toml", never_ready_toml("hung", "ready_timeout_s = 4\n"));
  test::Subprocess vm({VM_BINARY, "run", file.string()}, own.env());
  const pid_t pid = vmm_pid(vm);
  CHECK(vm.wait_for_line("vm hung: stopping", 60s));
  CHECK(
      vm.wait_for_line("vm hung: dead (HANGUP): not ready within 4 s of its start "
                       "(ready_timeout_s): killed, signal 9 (Killed)",
                       30s));
  CHECK(vm.wait_exit(30s) == exit_code_for(DeathReason::hangup));
  CHECK_FALSE(test::process_alive(pid));
}

TEST_CASE(
    "gdb connects to a guest's stub on loopback, reads its registers and detaches, and the guest "
    "goes on") {
  test::require_guest();
  test::OnDemandSocket own;
  const std::uint16_t port = free_tcp_port();
  const auto file = own.dir.write(
      "gdb.toml", test::guest_toml("gdbvm", "", "gdb_port = " + std::to_string(port) + "\n"));
  test::Subprocess vm({VM_BINARY, "run", file.string()}, own.env());
  const pid_t pid = vmm_pid(vm);
  REQUIRE(vm.wait_for_line("vm gdbvm: ready", kBoot));
  // The stub listens on loopback only: 127.0.0.1 in /proc/net/tcp is 0100007F.
  char local[32];
  std::snprintf(local, sizeof(local), "0100007F:%04X", port);
  const auto listening = test::run_command("grep -c ' " + std::string(local) +
                                           " 00000000:0000 0A' "
                                           "/proc/net/tcp");
  CHECK(listening.output == "1\n");
  CHECK_THAT(own.vm("info gdbvm").output, Catch::Contains("127.0.0.1:" + std::to_string(port)));
  const auto gdb = test::run_command(
      "timeout 60 gdb -nx -batch -ex 'target remote 127.0.0.1:" + std::to_string(port) +
      "' -ex 'info registers rip' -ex detach 2>&1");
  INFO(gdb.output);
  CHECK(gdb.exit_code == 0);
  CHECK_THAT(gdb.output, Catch::Contains("rip            0x"));
  CHECK_THAT(gdb.output, Catch::Contains("detached"));
  // Still running: it powers off when asked, as a guest that was never stopped does.
  CHECK(own.vm("stop gdbvm").exit_code == 0);
  CHECK(vm.wait_for_line("vm gdbvm: dead (SHUTDOWN)", 60s));
  CHECK(vm.wait_exit(30s) == 0);
  CHECK_FALSE(test::process_alive(pid));
}

TEST_CASE("a gdb stub needs debug = full and QEMU: refused at the VM file's key otherwise") {
  test::OnDemandSocket own;
  std::string none = test::guest_toml("nogdb", "", "gdb_port = 23999\n");
  none.replace(none.find("debug = \"full\""), 14, "debug = \"none\"");
  const auto none_file = own.dir.write("none.toml", none);
  const auto refused = own.vm("run " + none_file.string());
  CHECK(refused.exit_code == kExitConfig);
  CHECK_THAT(refused.output, Catch::Contains(none_file.string() + ":9:12: key 'gdb_port': needs "
                                                                  "debug = \"full\""));
  const auto crosvm_file =
      own.dir.write("crosvm.toml", test::fake_crosvm_toml("crosvmgdb", "") + "gdb_port = 23999\n");
  const auto crosvm = own.vm("run " + crosvm_file.string());
  CHECK(crosvm.exit_code == kExitConfig);
  CHECK_THAT(crosvm.output, Catch::Contains("key 'gdb_port': crosvm's gdb stub listens on every "
                                            "interface"));
  CHECK(own.daemons().empty());  // nothing was started for either
}

TEST_CASE(
    "vm console types into a real guest's shell, one writer at a time, --force takes over, and "
    "the terminal is restored after the escape and after the VM dies under it") {
  test::require_guest();
  test::OnDemandSocket own;
  const auto file = own.dir.write("shell.toml", test::guest_toml("shell", "cv.shell=1"));
  test::Subprocess run({VM_BINARY, "run", file.string()}, own.env());
  REQUIRE(run.wait_for_line("vm shell: ready", kBoot));

  test::PtyProcess first({VM_BINARY, "console", "shell"}, own.env());
  REQUIRE(first.wait_for("Escape character is ^] (Ctrl + ])", 30s));
  CHECK(first.raw_mode());
  first.type("\r");
  CHECK(first.wait_for("cv# ", 30s));
  first.type("echo hello-$((6*7))\r");  // the guest's shell computes it: not an echo of ours
  CHECK(first.wait_for("hello-42", 30s));

  // A second writer is refused, and nothing changes for the first.
  const auto second_try = own.vm("console shell");
  CHECK(second_try.exit_code == kExitConflict);
  CHECK_THAT(second_try.output, Catch::Contains("already has a console writer: take its input "
                                                "over with --force"));
  // Until it forces: then it writes, and the first is told it only watches now.
  test::PtyProcess second({VM_BINARY, "console", "--force", "shell"}, own.env());
  REQUIRE(second.wait_for("Escape character is ^]", 30s));
  CHECK(first.wait_for("another console took the input over (--force)", 30s));
  second.type("echo second-$((1+1))\r");
  CHECK(second.wait_for("second-2", 30s));
  CHECK(first.wait_for("second-2", 30s));  // every console shows the output

  // Ctrl-] leaves: exit 0, the terminal as it was, the VM still running.
  first.type(std::string(1, 0x1d));
  CHECK(first.wait_exit(30s) == 0);
  CHECK_FALSE(first.raw_mode());
  CHECK_THAT(first.output(), Catch::Contains("console left; VM shell goes on"));
  CHECK_THAT(own.vm("info shell").output, Catch::Contains("ready"));

  // The VM dies under the second: it says so, exits with the death's code, terminal restored.
  CHECK(own.vm("stop shell").exit_code == 0);
  CHECK(second.wait_for("vm shell: dead (SHUTDOWN)", 60s));
  CHECK(second.wait_exit(30s) == 0);
  CHECK_FALSE(second.raw_mode());
  CHECK(run.wait_exit(30s) == 0);
}

TEST_CASE(
    "vm run --console on a terminal takes input until the escape key, then Ctrl-C stops the VM") {
  test::require_guest();
  test::OnDemandSocket own;
  const auto file = own.dir.write("runshell.toml", test::guest_toml("runshell", "cv.shell=1"));
  test::PtyProcess run({VM_BINARY, "run", "--console", file.string()}, own.env());
  REQUIRE(run.wait_for("console attached", kBoot));
  CHECK(run.raw_mode());
  REQUIRE(run.wait_for("vm runshell: ready", kBoot));
  run.type("\r");
  CHECK(run.wait_for("cv# ", 30s));
  run.type("echo run-$((2*3))\r");
  CHECK(run.wait_for("run-6", 30s));
  run.type(std::string(1, 0x1d));
  CHECK(run.wait_for("console left; Ctrl-C stops the VM", 30s));
  CHECK_FALSE(run.raw_mode());
  run.type("\x03");  // a cooked terminal again: Ctrl-C is SIGINT for vm run
  CHECK(run.wait_for("vm runshell: dead (SHUTDOWN)", 60s));
  CHECK(run.wait_exit(30s) == 128 + SIGINT);
}

TEST_CASE("the crosvm stand-in's console takes input through crosvm's input= pipe") {
  test::OnDemandSocket own;
  const auto file = own.dir.write("echo.toml", test::fake_crosvm_toml("echo", ""));
  test::Subprocess run({VM_BINARY, "run", file.string()}, own.env());
  REQUIRE(run.wait_for_line("vm echo: ready", 60s));
  test::PtyProcess console({VM_BINARY, "console", "echo"}, own.env());
  REQUIRE(console.wait_for("Escape character is ^]", 30s));
  console.type("hello stand-in\r");
  CHECK(console.wait_for("fake-crosvm guest: read hello stand-in", 30s));
  console.type(std::string(1, 0x1d));
  CHECK(console.wait_exit(30s) == 0);
  run.signal(SIGINT);
  CHECK(run.wait_exit(30s) == 128 + SIGINT);
}

TEST_CASE("a debug = none VM refuses console, logs and dumps with clear errors") {
  test::OnDemandSocket own;
  std::string text = test::fake_crosvm_toml("quiet", "");
  text.replace(text.find("debug = \"full\""), 14, "debug = \"none\"");
  text.replace(text.find("ready = "), std::string::npos, "\n");  // its console is not read
  const auto file = own.dir.write("quiet.toml", text);
  test::Subprocess run({VM_BINARY, "run", file.string()}, own.env());
  REQUIRE(run.wait_for_line("vm quiet: running", 60s));
  const auto console = own.vm("console quiet");
  CHECK(console.exit_code == kExitRefused);
  CHECK(console.output ==
        "vm: VM 'quiet' runs with debug = \"none\": its console takes no input\n");
  const auto logs = own.vm("logs quiet");
  CHECK(logs.exit_code == kExitRefused);
  CHECK(logs.output == "vm: VM 'quiet' runs with debug = \"none\": its console is not kept\n");
  const auto dump = own.vm("dump quiet");
  CHECK(dump.exit_code == kExitRefused);
  CHECK_THAT(dump.output,
             Catch::EndsWith("vm: VM 'quiet' runs with debug = \"none\": its memory is never "
                             "dumped\n"));
  run.signal(SIGINT);
  CHECK(run.wait_exit(30s) == 128 + SIGINT);
}

namespace {

// The sum of an ELF core's PT_LOAD sizes, as readelf reads them.
std::uint64_t loaded_bytes(const std::filesystem::path& core) {
  const auto loads = test::run_command("readelf -lW " + core.string() + " | awk '$1 == \"LOAD\"' ");
  std::uint64_t total = 0;
  std::istringstream lines(loads.output);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string type, offset, virt, phys, file_size;
    fields >> type >> offset >> virt >> phys >> file_size;
    total += std::stoull(file_size, nullptr, 16);
  }
  return total;
}

}  // namespace

TEST_CASE(
    "a debuggable guest that panics leaves an ELF core of its memory before it dies "
    "GUEST_PANIC, and no more dumps than the cap") {
  test::require_guest();
  test::DaemonProcess daemon({.args = {"--dumps-per-vm", "2"}});
  const auto file = daemon.dir.write("panicky.toml", test::guest_toml("panicky", "cv.then=panic"));
  const auto dumps = daemon.dir / "state" / "dumps" / std::to_string(::geteuid());
  std::vector<std::string> reported;
  for (int run = 0; run < 3; ++run) {
    const auto result = daemon.vm("run " + file.string());
    INFO(result.output);
    CHECK(result.exit_code == exit_code_for(DeathReason::guest_panic));
    const auto at = result.output.find("memory dump: ");
    REQUIRE(at != std::string::npos);
    reported.push_back(result.output.substr(at + 13, result.output.find('\n', at) - at - 13));
    CHECK_THAT(result.output, Catch::Contains("vm panicky: dead (GUEST_PANIC)"));
  }
  // The cap: the two newest are kept.
  std::vector<std::string> kept;
  for (const auto& entry : std::filesystem::directory_iterator(dumps))
    kept.push_back(entry.path().string());
  std::sort(kept.begin(), kept.end());
  CHECK(kept == std::vector<std::string>{reported[1], reported[2]});
  const auto& core = reported[2];
  CHECK_THAT(test::run_command("readelf -h " + core).output, Catch::Contains("CORE (Core file)"));
  // Its loads cover the guest's 256 MiB (less the holes of the memory map, under a megabyte).
  CHECK(loaded_bytes(core) >= 255ull << 20);
  CHECK(test::run_command("grep -c -a 'Kernel panic - not syncing' " + core).output != "0\n");
  CHECK((std::filesystem::status(core).permissions() & std::filesystem::perms::group_all) ==
        std::filesystem::perms::none);
}

TEST_CASE(
    "vm dump takes a running guest's memory on demand, into the dump directory or the "
    "user's own file, and the guest goes on, while crosvm and debug = none refuse") {
  test::require_guest();
  test::DaemonProcess daemon;
  const auto file = daemon.dir.write("live.toml", test::guest_toml("live", ""));
  test::Subprocess run({VM_BINARY, "run", file.string()}, daemon.env());
  REQUIRE(run.wait_for_line("vm live: ready", kBoot));
  const auto to_dir = daemon.vm("dump live");
  INFO(to_dir.output);
  CHECK(to_dir.exit_code == 0);
  const auto path = to_dir.output.substr(to_dir.output.rfind('\n', to_dir.output.size() - 2) + 1);
  CHECK_THAT(path, Catch::StartsWith((daemon.dir / "state" / "dumps").string()));
  CHECK_THAT(test::run_command("readelf -h " + path).output, Catch::Contains("CORE (Core file)"));
  const auto mine = daemon.dir / "mine.core";
  const auto to_file = daemon.vm("dump live " + mine.string());
  CHECK(to_file.exit_code == 0);
  CHECK(loaded_bytes(mine) >= 255ull << 20);
  // Never over an existing file.
  const auto again = daemon.vm("dump live " + mine.string());
  CHECK(again.exit_code == kExitConflict);
  CHECK_THAT(again.output, Catch::Contains("exists: vm dump does not write over a file"));
  CHECK_THAT(daemon.vm("info live").output, Catch::Contains("last dump"));
  // The guest went on: it powers off when asked.
  CHECK(daemon.vm("stop live").exit_code == 0);
  CHECK(run.wait_exit(60s) == 0);

  const auto crosvm_file = daemon.dir.write("cv.toml", test::fake_crosvm_toml("cv", ""));
  test::Subprocess crosvm({VM_BINARY, "run", crosvm_file.string()}, daemon.env());
  REQUIRE(crosvm.wait_for_line("vm cv: ready", 60s));
  const auto refused = daemon.vm("dump cv");
  CHECK(refused.exit_code == kExitRefused);
  CHECK_THAT(refused.output, Catch::Contains("crosvm cannot dump a guest's memory"));
  crosvm.signal(SIGINT);
  CHECK(crosvm.wait_exit(30s) == 128 + SIGINT);
}
