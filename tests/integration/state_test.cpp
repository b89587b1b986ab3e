// What outlives crosvisord (docs/state.md): daemon-owned fleets kept in its state directory, a
// persistent fleet coming up again when the daemon starts, its files reopened with the owner's
// rights, and damaged records reported and skipped. Real daemons; VMs on the crosvm stand-in.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/exit_codes.hpp"
#include "core/unique_fd.hpp"
#include "integration/daemon_process.hpp"
#include "integration/guest.hpp"
#include "integration/other_user.hpp"
#include "support/processes.hpp"
#include "support/temp_dir.hpp"

using namespace crosvisor;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

// A fleet of `count` stand-in VMs named NAME-0.., held by the daemon.
std::string stand_in_fleet(const std::string& name, int count) {
  std::string keys = test::fake_crosvm_toml("x", "", false);
  keys = keys.substr(keys.find('\n') + 1);
  return "[fleet]\nname = \"" + name + "\"\n[defaults]\n" + keys + "[[vm]]\nname = \"" + name +
         "-{index}\"\ncount = " + std::to_string(count) + "\n";
}

json fleet_status(const test::DaemonProcess& daemon, const std::string& name) {
  const auto result = daemon.vm("fleet status " + name + " --json");
  INFO(result.output);
  if (result.exit_code != 0)
    return json();
  return json::parse(result.output).at(0);
}

bool all_ready(const test::DaemonProcess& daemon, const std::string& name) {
  const auto status = fleet_status(daemon, name);
  return !status.is_null() && status["ready"] == status["total"];
}

void stop_daemon(test::DaemonProcess& daemon) {
  daemon.process->signal(SIGTERM);
  REQUIRE(daemon.process->wait_exit(30s) == 0);
}

std::size_t records_in(const std::filesystem::path& dir) {
  std::size_t n = 0;
  std::error_code ec;
  for (std::filesystem::recursive_directory_iterator it(dir, ec), end; !ec && it != end;
       it.increment(ec))
    n += it->path().extension() == ".rec";
  return n;
}

}  // namespace

TEST_CASE("a persistent fleet comes up again when crosvisord starts, a plain one is forgotten") {
  test::TempDir state;
  const auto options = test::DaemonOptions{.state_dir = state.path()};
  std::filesystem::path persistent_file;
  {
    test::DaemonProcess daemon(options);
    persistent_file = daemon.dir.write("keep.toml", stand_in_fleet("keep", 2));
    const auto plain = daemon.dir.write("plain.toml", stand_in_fleet("plain", 1));
    const auto up = daemon.vm("fleet up --persist " + persistent_file.string());
    INFO(up.output);
    REQUIRE(up.exit_code == 0);
    REQUIRE(daemon.vm("fleet up " + plain.string()).exit_code == 0);
    REQUIRE(test::eventually([&] { return all_ready(daemon, "keep"); }, 20s));
    CHECK(fleet_status(daemon, "keep")["persistent"] == true);
    CHECK(fleet_status(daemon, "plain")["persistent"] == false);
    CHECK(records_in(state / "fleets") == 2);
    // A foreground fleet cannot persist: it lives as long as its command.
    const auto refused = daemon.vm("fleet up --persist --foreground " + persistent_file.string());
    CHECK(refused.exit_code == 2);
    stop_daemon(daemon);  // brings every fleet down: the plain one is forgotten
    CHECK(records_in(state / "fleets") == 1);
  }
  {
    test::DaemonProcess daemon(options);
    CHECK_THAT(daemon.process->output(), Catch::Contains("fleet keep of uid 0 is coming up again"));
    REQUIRE(test::eventually([&] { return all_ready(daemon, "keep"); }, 20s));
    CHECK(daemon.vm("fleet status plain").exit_code != 0);
    // Brought down by hand it stays defined; forgotten, it no longer comes up.
    REQUIRE(daemon.vm("fleet down keep").exit_code == 0);
    CHECK(records_in(state / "fleets") == 1);
    const auto forgotten = daemon.vm("fleet forget keep");
    INFO(forgotten.output);
    CHECK(forgotten.exit_code == 0);
    CHECK(records_in(state / "fleets") == 0);
    const auto again = daemon.vm("fleet forget keep");
    CHECK(again.exit_code == kExitNotFound);
    CHECK_THAT(again.output, Catch::Contains("no persistent fleet named keep of yours"));
    stop_daemon(daemon);
  }
  test::DaemonProcess daemon(options);
  CHECK(daemon.vm("fleet status keep").exit_code != 0);
}

TEST_CASE("a fleet of a daemon killed with SIGKILL comes back with the next daemon") {
  test::TempDir state;
  const auto options = test::DaemonOptions{.state_dir = state.path()};
  {
    test::DaemonProcess daemon(options);
    const auto file = daemon.dir.write("shop.toml", stand_in_fleet("shop", 2));
    REQUIRE(daemon.vm("fleet up " + file.string()).exit_code == 0);
    REQUIRE(test::eventually([&] { return all_ready(daemon, "shop"); }, 20s));
    daemon.process->signal(SIGKILL);
    daemon.process->wait_exit(10s);
  }
  // Its VMMs died with it (no live restore: docs/state.md); the fleet was up, so it comes up.
  REQUIRE(
      test::eventually([] { return test::processes_with_cmdline("--name shop-").empty(); }, 10s));
  test::DaemonProcess daemon(options);
  REQUIRE(test::eventually([&] { return all_ready(daemon, "shop"); }, 20s));
  REQUIRE(daemon.vm("fleet down shop").exit_code == 0);
  // Its record is gone by the answer (a daemon killed now would not bring the fleet back).
  CHECK(records_in(state / "fleets") == 0);
}

TEST_CASE("files are reopened with the fleet owner's rights: one nobody cannot read fails its VM") {
  test::OtherUser nobody;
  test::TempDir state;
  const auto options = test::DaemonOptions{.args = {"--shared"},
                                           .crosvm = (nobody.bin / "crosvm").string(),
                                           .own_runtime_dir = false,
                                           .state_dir = state.path()};
  // Two VMs, each its own kernel copy, in nobody's directory.
  const auto a_kernel = nobody.dir / "a-vmlinuz";
  const auto b_kernel = nobody.dir / "b-vmlinuz";
  std::filesystem::copy_file(nobody.dir / "vmlinuz", a_kernel);
  std::filesystem::copy_file(nobody.dir / "vmlinuz", b_kernel);
  ::chown(a_kernel.c_str(), test::OtherUser::kUid, test::OtherUser::kUid);
  ::chown(b_kernel.c_str(), test::OtherUser::kUid, test::OtherUser::kUid);
  const auto with_kernel = [&](const std::string& name, const std::filesystem::path& path) {
    std::string toml = nobody.stand_in_toml(name);
    const auto at = toml.find((nobody.dir / "vmlinuz").string());
    toml.replace(at, (nobody.dir / "vmlinuz").string().size(), path.string());
    return "[[vm]]\n" + toml;
  };
  const auto fleet =
      nobody.write("pair.toml", "[fleet]\nname = \"pair\"\n" + with_kernel("pa", a_kernel) +
                                    with_kernel("pb", b_kernel));
  {
    test::DaemonProcess daemon(options);
    const std::vector<std::string> env = {"CROSVISOR_SOCKET=" + daemon.socket.string()};
    const auto up = nobody.vm("fleet up --persist " + fleet.string(), env);
    INFO(up.output);
    REQUIRE(up.exit_code == 0);
    stop_daemon(daemon);
  }
  // nobody loses the right to read b's kernel; root (the daemon) still could.
  ::chown(b_kernel.c_str(), 0, 0);
  ::chmod(b_kernel.c_str(), 0600);
  test::DaemonProcess daemon(options);
  const std::vector<std::string> env = {"CROSVISOR_SOCKET=" + daemon.socket.string()};
  const auto status = [&] {
    return json::parse(nobody.vm("fleet status pair --json", env).output).at(0);
  };
  REQUIRE(test::eventually([&] { return status()["ready"] == 1; }, 20s));
  const auto now = status();
  INFO(now.dump(2));
  CHECK(now["failed"] == 1);
  const auto& pb = now["vms"][1];
  CHECK(pb["name"] == "pb");
  CHECK(pb["failed"] == true);
  CHECK_THAT(pb["problem"].get<std::string>(),
             Catch::Contains("cannot reopen its file: " + b_kernel.string() +
                             " (as uid 65534): Permission denied"));
  CHECK(test::processes_with_cmdline("--name pb").empty());
  CHECK(nobody.vm("fleet down pair", env).exit_code == 0);
  CHECK(nobody.vm("fleet forget pair", env).exit_code == 0);
}

TEST_CASE("a damaged state record is reported and moved aside, and the daemon serves") {
  test::TempDir state;
  std::filesystem::create_directories(state / "fleets/0");
  std::ofstream(state / "fleets/0/broken.rec") << "crosvisor-record 1 40 0badc0de\n{\"name\":";
  std::ofstream(state / "fleets/0/.tmp-half.rec.7.0") << "half a write";
  test::DaemonProcess daemon(test::DaemonOptions{.state_dir = state.path()});
  CHECK_THAT(daemon.process->output(),
             Catch::Contains("broken.rec: not an intact state record: truncated"));
  CHECK(daemon.vm("list").exit_code == 0);
  CHECK_FALSE(std::filesystem::exists(state / "fleets/0/broken.rec"));
  CHECK_FALSE(std::filesystem::exists(state / "fleets/0/.tmp-half.rec.7.0"));
  CHECK(std::filesystem::is_directory(state / "quarantine"));
}

TEST_CASE("under systemd crosvisord says when it serves and when it stops (sd_notify)") {
  test::TempDir dir;
  const auto notify = dir / "notify.sock";
  UniqueFd socket(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, notify.c_str(), sizeof(address.sun_path) - 1);
  REQUIRE(::bind(socket.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0);
  const auto next = [&] {
    pollfd ready{socket.get(), POLLIN, 0};
    if (::poll(&ready, 1, 10'000) <= 0)
      return std::string();
    char buffer[512] = {};
    const auto n = ::recv(socket.get(), buffer, sizeof(buffer) - 1, 0);
    return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : std::string();
  };
  test::DaemonProcess daemon(
      test::DaemonOptions{.environment = {"NOTIFY_SOCKET=" + notify.string()}});
  const auto serving = next();
  CHECK_THAT(serving, Catch::Contains("READY=1") && Catch::Contains("STATUS=serving "));
  daemon.process->signal(SIGTERM);
  CHECK_THAT(next(), Catch::Contains("STOPPING=1"));
  CHECK(daemon.process->wait_exit(30s) == 0);
}

TEST_CASE("a host shutdown brings every fleet down at once, persistent ones stay defined") {
  test::TempDir state;
  test::DaemonProcess daemon(test::DaemonOptions{.state_dir = state.path()});
  const auto keep = daemon.dir.write("keep.toml", stand_in_fleet("keep", 2));
  const auto plain = daemon.dir.write("plain.toml", stand_in_fleet("plain", 2));
  REQUIRE(daemon.vm("fleet up --persist " + keep.string()).exit_code == 0);
  REQUIRE(daemon.vm("fleet up " + plain.string()).exit_code == 0);
  REQUIRE(test::eventually([&] { return all_ready(daemon, "keep") && all_ready(daemon, "plain"); },
                           20s));
  // What crosvisor-guests.service runs when the host goes down.
  const auto down = daemon.vm("fleet down --all --all-users --timeout 10 --json");
  INFO(down.output);
  REQUIRE(down.exit_code == 0);
  const json fleets = json::parse(down.output);
  REQUIRE(fleets.size() == 2);
  for (const auto& fleet : fleets) {
    CHECK(fleet["ready"] == 0);
    for (const auto& vm : fleet["vms"])
      CHECK(vm["last_death"] == "SHUTDOWN");
  }
  CHECK(test::processes_with_cmdline("--name keep-").empty());
  CHECK(test::processes_with_cmdline("--name plain-").empty());
  CHECK(test::eventually([&] { return records_in(state / "fleets") == 1; }, 5s));  // keep's
  CHECK(daemon.vm("fleet down --all keep").exit_code == kExitUsage);
}
