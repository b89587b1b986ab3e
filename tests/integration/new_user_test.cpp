// The first mistakes a new user makes, and what they must get: a command that returns at once
// with the right code, Ctrl-C that works at every moment, a fleet that says why it is not up,
// messages in the user's words. `vm` and `crosvisord` run as separate processes throughout.
#include <signal.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/exit_codes.hpp"
#include "integration/daemon_process.hpp"
#include "integration/guest.hpp"
#include "integration/on_demand.hpp"
#include "support/processes.hpp"
#include "support/subprocess.hpp"
#include "vsock/cid_locks.hpp"

using namespace crosvisor;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

// "vm NAME: running: pid N, cid C" -> N
pid_t pid_in(const std::string& line) {
  return std::stoi(line.substr(line.find("pid ") + 4));
}

}  // namespace

TEST_CASE("vm run returns at once with START_FAILED when the VM cannot start, daemon or not") {
  test::OnDemandSocket own;
  const auto stand_in = [&](const std::string& name, const std::string& params,
                            const std::string& extra = "") {
    return own.dir.write(name + ".toml", test::fake_crosvm_toml(name, params) + extra);
  };
  // A CID that another process of the host holds: this test, here.
  vsock::CidLocks host_wide;
  auto held = host_wide.try_lock(61001);
  REQUIRE(held.has_value());
  REQUIRE(held->has_value());
  std::string bogus = test::guest_toml("bogus", "");
  bogus.replace(bogus.find("accel = \"tcg\""), 13, "accel = \"bogus\"");
  const auto failing = {
      stand_in("fails", "fake_crosvm.fail=1"),
      stand_in("heldcid", "", "cid = 61001\n"),
      own.dir.write("bogus.toml", bogus),
  };
  // Trials alternate between a fresh socket (the command starts the daemon) and a running one.
  for (int trial = 0; trial < 8; ++trial) {
    for (const auto& file : failing) {
      INFO("trial " << trial << ", " << file.filename());
      std::unique_ptr<test::OnDemandSocket> fresh;
      auto env = own.env();
      if (trial % 2 == 1) {
        fresh = std::make_unique<test::OnDemandSocket>();
        env = fresh->env();
      }
      test::Subprocess run({VM_BINARY, "run", file.string()}, env);
      const auto code = run.wait_exit(15s);
      INFO(run.output());
      REQUIRE(code.has_value());
      CHECK(*code == 10);
      CHECK_THAT(run.output(), Catch::Contains("dead (START_FAILED)"));
      // QEMU is running once it answers on QMP: one that never started is never said to run.
      // (crosvm has no such handshake: it counts as running once exec'd, as in AVF.)
      if (file.filename() == "bogus.toml")
        CHECK_THAT(run.output(), !Catch::Contains(": running: "));
      if (file.filename() == "heldcid.toml")
        CHECK_THAT(run.output(), Catch::Contains("vsock CID 61001 is held by another process on "
                                                 "this host (pid " +
                                                 std::to_string(getpid()) + ", uid 0)"));
    }
  }
}

TEST_CASE("vm run returns at once when its VMM is killed, 20 times in a row") {
  test::OnDemandSocket own;
  const auto file = own.dir.write("victim.toml", test::fake_crosvm_toml("victim", ""));
  for (int trial = 0; trial < 20; ++trial) {
    INFO("trial " << trial);
    test::Subprocess run({VM_BINARY, "run", file.string()}, own.env());
    auto running = run.wait_for_line(": running: pid ", 20s);
    REQUIRE(running.has_value());
    ::kill(pid_in(*running), SIGKILL);
    const auto code = run.wait_exit(10s);
    INFO(run.output());
    REQUIRE(code.has_value());
    CHECK(*code == 15);  // KILLED
    CHECK_THAT(run.output(), Catch::Contains("vm victim: dead (KILLED)"));
  }
}

TEST_CASE("Ctrl-C works at every moment of vm run, and leaves nothing behind") {
  const std::vector<int> delays_ms = {0, 2, 5, 10, 20, 40, 80, 150, 300, 600};
  for (const int delay : delays_ms) {
    INFO("SIGINT after " << delay << " ms");
    test::OnDemandSocket own;  // each trial starts the daemon: the earliest moments are covered
    const auto file = own.dir.write("early.toml", test::fake_crosvm_toml("early", ""));
    test::Subprocess run({VM_BINARY, "run", file.string()}, own.env());
    std::this_thread::sleep_for(std::chrono::milliseconds(delay));
    run.signal(SIGINT);
    const auto code = run.wait_exit(15s);
    INFO(run.output());
    REQUIRE(code.has_value());
    CHECK(*code == 128 + SIGINT);
    CHECK(test::eventually([&] { return test::processes_with_cmdline("--name early ").empty(); },
                           15s));
  }
}

TEST_CASE("a fleet that cannot come up entirely returns, saying which VM failed and what waits") {
  test::OnDemandSocket own;
  std::string keys = test::fake_crosvm_toml("x", "");
  keys = keys.substr(keys.find('\n') + 1);  // every key but the name
  const auto file = own.dir.write(
      "shop.toml", "[fleet]\nname = \"shop\"\n[defaults]\n" + keys +
                       "[[vm]]\nname = \"db\"\nparams = \"console=ttyS0 fake_crosvm.fail=1\"\n"
                       "[[vm]]\nname = \"web\"\nafter = [\"db\"]\n"
                       "[[vm]]\nname = \"lb\"\nafter = [\"web\"]\n"
                       "[[vm]]\nname = \"cache\"\n");
  for (const std::string how : {"", "--until-ready "}) {
    INFO(how);
    test::Subprocess up(
        {VM_BINARY, "fleet", "up", how.empty() ? "--foreground" : "--until-ready", file.string()},
        own.env());
    const auto code = up.wait_exit(30s);
    INFO(up.output());
    REQUIRE(code.has_value());
    CHECK(*code == 1);
    CHECK_THAT(up.output(), Catch::Contains("fleet shop: 1 of 4 ready, 1 failed, 2 blocked"));
    CHECK_THAT(up.output(), Catch::Contains("db: died (START_FAILED) before it was up"));
    CHECK_THAT(up.output(), Catch::Contains("web: waits for db, which failed"));
    CHECK_THAT(up.output(), Catch::Contains("lb: waits for db, which failed"));
    CHECK_THAT(up.output(), Catch::Contains("fleet shop: not every VM came up"));
    CHECK(test::eventually([&] { return test::processes_with_cmdline("--name cache ").empty(); },
                           15s));
  }
}

TEST_CASE("a second fleet that reuses a running fleet's names is refused, and starts nothing") {
  test::DaemonProcess daemon({.own_runtime_dir = false});
  std::string keys = test::fake_crosvm_toml("x", "", false);
  keys = keys.substr(keys.find('\n') + 1);
  const auto first = daemon.dir.write(
      "shop.toml", "[fleet]\nname = \"shop\"\n[defaults]\n" + keys +
                       "[[vm]]\nname = \"db\"\n[[vm]]\nname = \"web\"\nafter = [\"db\"]\n");
  const auto second = daemon.dir.write(
      "copy.toml", "[fleet]\nname = \"copy\"\n[defaults]\n" + keys +
                       "[[vm]]\nname = \"db\"\n[[vm]]\nname = \"web\"\n[[vm]]\nname = \"new\"\n");
  REQUIRE(daemon.vm("fleet up " + first.string()).exit_code == 0);
  const auto again = daemon.vm("fleet up " + first.string());
  CHECK(again.exit_code == 6);
  CHECK_THAT(again.output, Catch::Contains("vm fleet: a fleet named 'shop' is already up"));
  const auto copy = daemon.vm("fleet up " + second.string());
  CHECK(copy.exit_code == 6);
  CHECK_THAT(copy.output,
             Catch::Contains("fleet copy: db (fleet shop) and web (fleet shop) are already "
                             "running; nothing was started"));
  CHECK(test::processes_with_cmdline("--name new ").empty());
  CHECK(daemon.vm("fleet down shop").exit_code == 0);
}

TEST_CASE(
    "a fleet held in the foreground reports deaths, and a second Ctrl-C kills while it goes "
    "down") {
  test::OnDemandSocket own;
  std::string keys = test::fake_crosvm_toml("x", "fake_crosvm.powerbtn=ignore");
  keys = keys.substr(keys.find('\n') + 1);
  const auto file =
      own.dir.write("stubborn.toml", "[fleet]\nname = \"stubborn\"\n[defaults]\n" + keys +
                                         "stop_timeout_s = 60\n"
                                         "[[vm]]\nname = \"one\"\n[[vm]]\nname = \"two\"\n");
  test::Subprocess up({VM_BINARY, "fleet", "up", "--foreground", file.string()}, own.env());
  REQUIRE(up.wait_for_line("fleet stubborn: up; Ctrl-C takes it down", 30s));
  const auto members = test::processes_with_cmdline("--name one ");
  REQUIRE(members.size() == 1);
  ::kill(members.front(), SIGKILL);
  CHECK(up.wait_for_line("fleet stubborn: one died (KILLED)", 10s));
  up.signal(SIGINT);
  CHECK(
      up.wait_for_line("fleet stubborn: going down (press Ctrl-C again to kill its VMs now)", 10s));
  std::this_thread::sleep_for(300ms);
  up.signal(SIGINT);
  CHECK(up.wait_for_line("fleet stubborn: killing its VMs", 10s));
  const auto code = up.wait_exit(10s);  // not the minute the guests were given
  INFO(up.output());
  REQUIRE(code.has_value());
  CHECK(*code == 128 + SIGINT);
  const auto row = up.output().rfind("\n  two ");  // in the last table
  REQUIRE(row != std::string::npos);
  CHECK_THAT(up.output().substr(row + 1, up.output().find('\n', row + 1) - row - 1),
             Catch::EndsWith("KILLED"));
  CHECK(test::processes_with_cmdline("--name two ").empty());
}

TEST_CASE("messages speak of the user's files and names, never of CAF or of internal fds") {
  test::DaemonProcess daemon({.own_runtime_dir = false});
  const auto stay = daemon.dir.write("stay.toml", test::fake_crosvm_toml("stay", ""));
  test::Subprocess first({VM_BINARY, "run", stay.string()}, daemon.env());
  REQUIRE(first.wait_for_line("vm stay: ready", 20s));
  const auto clash = daemon.vm("run " + stay.string());
  CHECK(clash.exit_code == 6);  // a conflict, not a bad VM file
  CHECK(clash.output == "vm: a VM named 'stay' is already running\n");

  const auto empty = daemon.dir.write("empty", "");
  std::string text = test::fake_crosvm_toml("empty", "");
  const auto at = text.find("kernel = ");
  text.replace(at, text.find('\n', at) - at, "kernel = \"" + empty.string() + "\"");
  const auto empty_kernel = daemon.vm("run " + daemon.dir.write("ek.toml", text).string());
  CHECK(empty_kernel.exit_code == kExitImage);  // the file is there, but cannot serve
  CHECK(empty_kernel.output == "vm: kernel " + empty.string() + " is empty\n");
  text.replace(text.find(empty.string()), empty.string().size(), daemon.dir.path().string());
  const auto dir_kernel = daemon.vm("run " + daemon.dir.write("dk.toml", text).string());
  CHECK(dir_kernel.exit_code == kExitImage);
  CHECK(dir_kernel.output ==
        "vm: kernel " + daemon.dir.path().string() + " is a directory, not a regular file\n");

  // --console with debug = none shows nothing: said, once.
  std::string quiet =
      test::fake_crosvm_toml("quiet", "fake_crosvm.exit=0 fake_crosvm.after_ms=200");
  quiet.replace(quiet.find("debug = \"full\""), 14, "debug = \"none\"");
  const auto console = daemon.vm("run --console " + daemon.dir.write("q.toml", quiet).string());
  CHECK(console.exit_code == 0);
  CHECK_THAT(console.output, Catch::Contains("vm quiet: debug = \"none\": its console is neither "
                                             "kept nor shown"));
  first.signal(SIGINT);
  CHECK(first.wait_exit(20s) == 128 + SIGINT);
}

TEST_CASE("exit codes and versions: one table for vm and crosvisord, unknown commands named") {
  const auto bogus = test::run_command(std::string(CROSVISORD_BINARY) + " --bogus 2>&1");
  CHECK(bogus.exit_code == 2);
  const auto version = test::run_command(std::string(CROSVISORD_BINARY) + " --version 2>&1");
  CHECK(version.exit_code == 0);
  CHECK(version.output == "crosvisord 0.1.0\n");
  const auto vm_version = test::run_command(std::string(VM_BINARY) + " --version 2>&1");
  CHECK(vm_version.exit_code == 0);
  CHECK(vm_version.output == "vm 0.1.0\n");
  const auto unknown = test::run_command(std::string(VM_BINARY) + " destroy 2>&1");
  CHECK(unknown.exit_code == 2);
  CHECK_THAT(unknown.output,
             Catch::StartsWith("vm: unknown command 'destroy' (commands: run, start, list,"));
  CHECK_THAT(unknown.output, !Catch::Contains("completion"));  // hidden
  const auto typo = test::run_command(std::string(VM_BINARY) + " list --al 2>&1");
  CHECK(typo.exit_code == 2);
}

TEST_CASE("tables: columns fit long names, missing values are '-', global options go anywhere") {
  test::DaemonProcess daemon({.own_runtime_dir = false});
  const std::string long_name(60, 'l');
  const auto file = daemon.dir.write("long.toml", test::fake_crosvm_toml(long_name, ""));
  test::Subprocess run({VM_BINARY, "run", file.string()}, daemon.env());
  REQUIRE(run.wait_for_line(": ready", 20s));
  // --socket after the command, as users type it.
  const auto list = test::run_command(std::string(VM_BINARY) + " list --socket " +
                                      daemon.socket.string() + " 2>&1");
  INFO(list.output);
  REQUIRE(list.exit_code == 0);
  const auto header_end = list.output.find('\n');
  const std::string header = list.output.substr(0, header_end);
  const std::string row = list.output.substr(header_end + 1);
  CHECK(header.find("STATE") == row.find("ready"));
  CHECK(header.find("OWNER") == row.find("root"));
  run.signal(SIGINT);
  CHECK(run.wait_exit(20s) == 128 + SIGINT);
}

TEST_CASE("after Ctrl-C each console line comes once, and a daemon's SIGTERM tells the VM's fate") {
  test::DaemonProcess daemon({.own_runtime_dir = false});
  const auto file = daemon.dir.write("twice.toml", test::fake_crosvm_toml("twice", ""));
  {
    test::Subprocess run({VM_BINARY, "run", "--console", file.string()}, daemon.env());
    REQUIRE(run.wait_for_line("vm twice: ready", 20s));
    run.signal(SIGINT);
    REQUIRE(run.wait_exit(20s) == 128 + SIGINT);
    const std::string line = "fake-crosvm guest: power button pressed, powering off";
    const auto first = run.output().find(line);
    REQUIRE(first != std::string::npos);
    CHECK(run.output().find(line, first + 1) == std::string::npos);
    CHECK_THAT(run.output(), !Catch::Contains("[warning]"));  // nothing of spdlog's on first use
  }
  test::Subprocess run({VM_BINARY, "run", file.string()}, daemon.env());
  REQUIRE(run.wait_for_line("vm twice: ready", 20s));
  daemon.process->signal(SIGTERM);
  CHECK(run.wait_for_line("vm: crosvisord received signal 15 and stops every VM", 10s));
  CHECK(run.wait_for_line("vm twice: dead (SHUTDOWN)", 10s));
  CHECK(run.wait_exit(10s) == 0);
  CHECK(daemon.process->wait_exit(10s) == 0);
}
