// Debuggable VMs as AVF has them (issue 16): boot hang-up detection, the interactive console,
// crash dumps and the gdb stub, on real guests under QEMU and on the crosvm stand-in.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <cstring>

#include "core/exit_codes.hpp"
#include "integration/guest.hpp"
#include "integration/on_demand.hpp"
#include "support/processes.hpp"
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
  CHECK(vm.wait_for_line("vm hung: dead (HANGUP): not ready within 4 s of its start "
                         "(ready_timeout_s): killed, signal 9 (Killed)",
                         30s));
  CHECK(vm.wait_exit(30s) == exit_code_for(DeathReason::hangup));
  CHECK_FALSE(test::process_alive(pid));
}

TEST_CASE("gdb connects to a guest's stub on loopback, reads its registers and detaches; the guest "
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
  const auto listening = test::run_command("grep -c ' " + std::string(local) + " 00000000:0000 0A' "
                                           "/proc/net/tcp");
  CHECK(listening.output == "1\n");
  CHECK_THAT(own.vm("info gdbvm").output, Catch::Contains("127.0.0.1:" + std::to_string(port)));
  const auto gdb = test::run_command("timeout 60 gdb -nx -batch -ex 'target remote 127.0.0.1:" +
                                     std::to_string(port) +
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
  const auto crosvm_file = own.dir.write(
      "crosvm.toml", test::fake_crosvm_toml("crosvmgdb", "") + "gdb_port = 23999\n");
  const auto crosvm = own.vm("run " + crosvm_file.string());
  CHECK(crosvm.exit_code == kExitConfig);
  CHECK_THAT(crosvm.output, Catch::Contains("key 'gdb_port': crosvm's gdb stub listens on every "
                                            "interface"));
  CHECK(own.daemons().empty());  // nothing was started for either
}
