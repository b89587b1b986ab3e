// Debuggable VMs as AVF has them (issue 16): boot hang-up detection, the interactive console,
// crash dumps and the gdb stub, on real guests under QEMU and on the crosvm stand-in.
#include <signal.h>

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
