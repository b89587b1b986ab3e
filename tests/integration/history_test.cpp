// The `vm` verbs operators bring from virsh and docker: detached VMs, dead VMs kept until vm rm,
// an event stream and vm wait (crosvm stand-in, each command its own process).
#include <catch2/catch.hpp>
#include <csignal>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "core/exit_codes.hpp"
#include "integration/daemon_process.hpp"
#include "integration/guest.hpp"
#include "support/processes.hpp"
#include "support/subprocess.hpp"

using namespace crosvisor;
using namespace std::chrono_literals;

namespace {

nlohmann::json json_of(const test::CommandResult& result) {
  INFO(result.output);
  REQUIRE(result.exit_code == 0);
  return nlohmann::json::parse(result.output);
}

}  // namespace

TEST_CASE(
    "a detached VM outlives the vm command that started it and dies at vm stop, and a "
    "dead VM stays listed with its reason until vm rm") {
  test::DaemonProcess daemon;
  const auto file = daemon.dir.write("kept.toml", test::fake_crosvm_toml("kept", "", false));
  const auto started = daemon.vm("start " + file.string());
  INFO(started.output);
  REQUIRE(started.exit_code == 0);
  CHECK_THAT(started.output, Catch::Contains("vm kept: ready"));
  CHECK_THAT(started.output, Catch::Contains("detached: crosvisord keeps it until `vm stop kept`"));
  // The command has exited; the VM runs on.
  const auto vmms = test::processes_with_cmdline("--name kept");
  REQUIRE(vmms.size() == 1);
  std::this_thread::sleep_for(500ms);
  CHECK(test::process_alive(vmms[0]));
  CHECK(json_of(daemon.vm("info --json kept"))["state"] == "ready");
  // vm run -d is the same.
  const auto other = daemon.dir.write("other.toml", test::fake_crosvm_toml("other", "", false));
  CHECK(daemon.vm("run -d " + other.string()).exit_code == 0);
  CHECK(daemon.vm("list -q").output == "kept\nother\n");
  // One with no condition to be ready on is up once it runs: vm run -d returns then (it waited
  // for a ready that never comes).
  std::string plain_keys = test::fake_crosvm_toml("plain", "", false);
  plain_keys = plain_keys.substr(0, plain_keys.find("ready = "));
  const auto plain = daemon.dir.write("plain.toml", plain_keys);
  const auto detached =
      test::run_command("CROSVISOR_SOCKET=" + daemon.socket.string() + " timeout 20 " + VM_BINARY +
                        " run -d " + plain.string() + " 2>&1");
  INFO(detached.output);
  CHECK(detached.exit_code == 0);
  CHECK_THAT(detached.output, Catch::Contains("vm plain: detached: crosvisord keeps it"));
  // So is vm wait --until ready (it waited forever), and vm info says why.
  const auto waited =
      test::run_command("CROSVISOR_SOCKET=" + daemon.socket.string() + " timeout 20 " + VM_BINARY +
                        " wait plain --until ready 2>&1");
  INFO(waited.output);
  CHECK(waited.exit_code == 0);
  CHECK_THAT(daemon.vm("info plain").output, Catch::Contains("ready on    - (up once it runs)"));
  CHECK_THAT(daemon.vm("info kept").output, Catch::Contains("ready on    a line on its console"));
  CHECK(json_of(daemon.vm("info --json plain"))["ready_on"].is_null());
  CHECK(json_of(daemon.vm("info --json kept"))["ready_on"] == "console");
  CHECK(daemon.vm("stop plain").exit_code == 0);
  CHECK(daemon.vm("rm plain").exit_code == 0);

  // Only a dead VM can be forgotten.
  const auto live = daemon.vm("rm kept");
  CHECK(live.exit_code == kExitRefused);
  CHECK_THAT(live.output, Catch::Contains("stop it first"));

  CHECK(daemon.vm("stop kept").exit_code == 0);
  CHECK(test::eventually([&] { return !test::process_alive(vmms[0]); }, 10s));
  CHECK(daemon.vm("list -q").output == "other\n");  // the living only
  const auto all = json_of(daemon.vm("list --all --json"));
  REQUIRE(all.size() == 2);
  CHECK(all[1]["name"] == "kept");
  CHECK(all[1]["state"] == "dead");
  CHECK(all[1]["reason"] == "SHUTDOWN");
  CHECK(all[1]["started_at_ms"].is_number());
  CHECK(all[1]["ended_at_ms"].get<std::int64_t>() >= all[1]["started_at_ms"].get<std::int64_t>());
  CHECK(all[1]["console_log"].is_string());
  CHECK_THAT(daemon.vm("ps -a").output, Catch::Contains("dead (SHUTDOWN)"));
  CHECK(json_of(daemon.vm("info --json kept"))["reason"] == "SHUTDOWN");
  const auto logs = daemon.vm("logs kept");
  CHECK(logs.exit_code == 0);
  CHECK_THAT(logs.output, Catch::Contains(test::kFakeGuestReady));
  CHECK_THAT(logs.output, Catch::Contains("dead; this is its console log"));

  CHECK(daemon.vm("rm kept").exit_code == 0);
  CHECK(daemon.vm("list --all -q").output == "other\n");
  CHECK(daemon.vm("rm kept").exit_code == kExitNotFound);
  CHECK(daemon.vm("info kept").exit_code == kExitNotFound);
  CHECK(daemon.vm("stop other").exit_code == 0);
}

TEST_CASE(
    "vm events from a second process sees a fleet member crash and come back, in order, "
    "and vm wait returns with the death's exit code") {
  test::DaemonProcess daemon;
  test::Subprocess events({VM_BINARY, "events", "--json"}, daemon.env());
  REQUIRE(test::eventually([&] { return daemon.vm("list").exit_code == 0; }, 5s));
  std::this_thread::sleep_for(300ms);  // its subscription is in
  std::string member = test::fake_crosvm_toml("x", "", false);
  member = member.substr(member.find('\n') + 1);
  member = member.substr(member.find('\n') + 1);  // vmm = ...
  const auto file = daemon.dir.write(
      "crashy.toml", "[fleet]\nname = \"crashy\"\n[defaults]\nvmm = \"crosvm\"\n" + member +
                         "[[vm]]\nname = \"crasher\"\nrestart = \"on-failure\"\nmax_restarts = 1\n"
                         "backoff_s = 0.2\n"
                         "params = \"console=ttyS0 reboot=k panic=-1 fake_crosvm.exit=33 "
                         "fake_crosvm.after_ms=400\"\n");
  // vm wait on a VM that does not exist yet is refused; one that will crash returns its code.
  CHECK(daemon.vm("wait crasher").exit_code == kExitNotFound);
  // --json: the fleet's status alone on stdout (the progress is on stderr).
  const auto up =
      test::run_command("(CROSVISOR_SOCKET=" + daemon.socket.string() + " " + VM_BINARY +
                        " fleet up --json " + file.string() + " 2>/dev/null)");
  INFO(up.output);
  const auto status = nlohmann::json::parse(up.output);
  CHECK(status["name"] == "crashy");
  CHECK(status["total"] == 1);
  const auto waited = daemon.vm("wait crasher --until dead");
  CHECK(waited.exit_code == exit_code_for(DeathReason::crash));
  // Its second death (no restart left) ends the list of what to see.
  REQUIRE(events.wait_for_line("\"kind\":\"restarted\"", 20s));
  // Read on until its second death (the last, with one restart allowed).
  INFO(events.output());
  REQUIRE(events.wait_for_line("\"reason\":\"CRASH\"", 20s));
  std::vector<std::string> kinds;
  std::istringstream lines(events.output());
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] != '{')
      continue;
    const auto event = nlohmann::json::parse(line);
    if (event["vm"] == "crasher")
      kinds.push_back(event["kind"].get<std::string>() +
                      (event.contains("reason") ? ":" + event["reason"].get<std::string>() : ""));
  }
  INFO(events.output());
  const std::vector<std::string> expected = {"starting",   "running",   "ready",
                                             "dead:CRASH", "restarted", "starting",
                                             "running",    "ready",     "dead:CRASH"};
  CHECK(kinds == expected);
  CHECK(daemon.vm("fleet down crashy").exit_code == 0);
  events.signal(SIGINT);
  CHECK(events.wait_exit(5s) == 0);
}
