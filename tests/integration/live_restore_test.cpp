// Live restore (docs/state.md): with --live-restore, the VMs of crosvisord's fleets outlive it,
// through a crash (SIGKILL) or a restart (SIGTERM), and the next crosvisord takes them over: the
// same VMM processes, their consoles logged without a gap, their uptime continued, their
// policies applied to any that died meanwhile; a pid is never taken over on its own word. Real
// daemons; VMs on the crosvm stand-in, and real guests under QEMU (TCG).
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "integration/daemon_process.hpp"
#include "integration/guest.hpp"
#include "integration/net_probe.hpp"
#include "process/proc_identity.hpp"
#include "store/record_file.hpp"
#include "store/records.hpp"
#include "support/processes.hpp"
#include "support/pty_process.hpp"
#include "support/subprocess.hpp"
#include "support/temp_dir.hpp"

using namespace crosvisor;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

// VMMs a killed daemon leaves behind are reparented to the closest subreaper: this test process,
// which reaps them once they end (a real host's init does the same).
struct Subreaper {
  Subreaper() { ::prctl(PR_SET_CHILD_SUBREAPER, 1); }
  ~Subreaper() { ::prctl(PR_SET_CHILD_SUBREAPER, 0); }
};

// Reaps `pid` if it is an ended child of this process (an orphaned VMM).
void reap(pid_t pid) {
  for (int i = 0; i < 100 && ::waitpid(pid, nullptr, WNOHANG) == 0; ++i)
    std::this_thread::sleep_for(50ms);
}

// VMMs that outlive their daemon by design also outlive a test that fails half-way: this ends
// the ones it was told of (each checked to be the same process first), however the test ends.
struct LeftRunning {
  std::vector<process::ProcessIdentity> vmms;
  void add(pid_t pid) {
    if (auto identity = process::identify(pid))
      vmms.push_back(std::move(*identity));
  }
  ~LeftRunning() {
    for (const auto& vmm : vmms) {
      if (auto pidfd = process::open_same_process(vmm)) {
        ::kill(vmm.pid, SIGKILL);
        reap(vmm.pid);
      }
    }
  }
};

json fleet_json(const test::DaemonProcess& daemon, const std::string& name) {
  const auto result = daemon.vm("fleet status " + name + " --json");
  if (result.exit_code != 0)
    return json();
  return json::parse(result.output).at(0);
}

bool all_ready(const test::DaemonProcess& daemon, const std::string& name) {
  const auto status = fleet_json(daemon, name);
  return !status.is_null() && status["ready"] == status["total"];
}

std::map<std::string, pid_t> pids_of(const test::DaemonProcess& daemon, const std::string& name) {
  std::map<std::string, pid_t> pids;
  const json status = fleet_json(daemon, name);  // not a temporary: the loop walks inside it
  for (const auto& vm : status["vms"]) {
    if (!vm["pid"].is_null())
      pids[vm["name"]] = vm["pid"].get<pid_t>();
  }
  return pids;
}

// Brings the fleet in `file` up and waits until its `count` VMs are ready: their VMMs' pids.
std::map<std::string, pid_t> up_and_ready(const test::DaemonProcess& daemon,
                                          const std::filesystem::path& file,
                                          const std::string& fleet, std::size_t count,
                                          std::chrono::seconds within,
                                          const std::string& flags = "") {
  const auto up = daemon.vm("fleet up " + flags + file.string());
  INFO(up.output);
  REQUIRE(up.exit_code == 0);
  REQUIRE(test::eventually([&] { return all_ready(daemon, fleet); }, within));
  auto pids = pids_of(daemon, fleet);
  REQUIRE(pids.size() == count);
  return pids;
}

// The numbers of the lines "<word> N" in a console log, in order.
std::vector<long> numbered(const std::filesystem::path& log, const std::string& word) {
  std::ifstream in(log);
  std::vector<long> numbers;
  const std::regex line(word + " ([0-9]+)");
  std::string text;
  while (std::getline(in, text)) {
    std::smatch match;
    if (std::regex_search(text, match, line))
      numbers.push_back(std::stol(match[1]));
  }
  return numbers;
}

// Whether the daemon said `text`: before its "serving" line (read already) or after.
bool said(test::DaemonProcess& daemon, const std::string& text) {
  return daemon.process->output().find(text) != std::string::npos ||
         daemon.process->wait_for_line(text, 5s);
}

// The inode of the network namespace of `pid` (0 if it is gone).
ino_t net_namespace_of(pid_t pid) {
  struct stat info {};
  const auto path = "/proc/" + std::to_string(pid) + "/ns/net";
  return ::stat(path.c_str(), &info) == 0 ? info.st_ino : 0;
}

// The live processes in network namespace `space`, by name.
std::vector<pid_t> in_namespace(ino_t space, const std::string& comm) {
  std::vector<pid_t> found;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const auto name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos)
      continue;
    const pid_t pid = std::stoi(name);
    std::ifstream in("/proc/" + name + "/comm");
    std::string command;
    if (std::getline(in, command) && command == comm && net_namespace_of(pid) == space &&
        test::process_alive(pid))
      found.push_back(pid);
  }
  return found;
}

std::string nic_address(const test::DaemonProcess& daemon, const std::string& vm) {
  const auto out = daemon.vm("info --json " + vm);
  if (out.exit_code != 0)
    return "";
  const json info = json::parse(out.output);
  return info["nics"].empty() ? "" : info["nics"][0]["address"].get<std::string>();
}

bool without_gap(const std::vector<long>& numbers) {
  for (std::size_t i = 1; i < numbers.size(); ++i) {
    if (numbers[i] != numbers[i - 1] + 1)
      return false;
  }
  return !numbers.empty();
}

}  // namespace

TEST_CASE("fleets outlive a killed or restarted crosvisord and are taken over by the next one") {
  Subreaper subreaper;
  test::TempDir state;
  const test::DaemonOptions options{.args = {"--live-restore"}, .state_dir = state.path()};
  std::string keys = test::fake_crosvm_toml("x", "fake_crosvm.chatter=4000", false);
  keys = keys.substr(keys.find('\n') + 1);
  const std::string fleet = "[fleet]\nname = \"shop\"\n[defaults]\n" + keys +
                            "restart = \"on-failure\"\nbackoff_s = 0\n"
                            "[[vm]]\nname = \"web-{index}\"\ncount = 2\n";
  std::map<std::string, pid_t> pids;
  auto daemon = std::make_unique<test::DaemonProcess>(options);
  const auto file = state.write("shop.toml", fleet);
  REQUIRE(daemon->vm("fleet up " + file.string()).exit_code == 0);
  REQUIRE(test::eventually([&] { return all_ready(*daemon, "shop"); }, 20s));
  pids = pids_of(*daemon, "shop");
  REQUIRE(pids.size() == 2);
  LeftRunning left;
  for (const auto& [name, pid] : pids)
    left.add(pid);

  SECTION("kill -9: the VMMs run on, the next daemon takes them over") {
    daemon->process->signal(SIGKILL);
    daemon->process->wait_exit(10s);
    std::this_thread::sleep_for(500ms);  // the guests chatter while no daemon reads
    for (const auto& [name, pid] : pids)
      CHECK(test::process_alive(pid));
    // The next one, elsewhere but on the same state directory.
    daemon = std::make_unique<test::DaemonProcess>(options);
    // Said before "serving", which the daemon's start waited for: read already.
    CHECK_THAT(daemon->process->output(), Catch::Contains("taking over 2 VM(s) still running"));
    REQUIRE(test::eventually([&] { return all_ready(*daemon, "shop"); }, 5s));
    CHECK(pids_of(*daemon, "shop") == pids);
    const auto info = json::parse(daemon->vm("info web-0 --json").output);
    CHECK(info["uptime_ms"].get<std::int64_t>() >= 500);
    // Everything the guest printed meanwhile waited in its console FIFO: the log has no gap.
    const auto new_log = daemon->dir / "logs/0/web-0.log";
    REQUIRE(test::eventually([&] { return numbered(new_log, "chatter").size() > 5; }, 10s));
    const auto lines = numbered(new_log, "chatter");
    INFO("first chatter line after the takeover: " << lines.front());
    CHECK(lines.front() > 1);  // it printed before: the lines that waited come first
    CHECK(without_gap(lines));
    // vm logs -f follows a VM that was taken over.
    test::Subprocess follow({VM_BINARY, "logs", "-f", "web-1"}, daemon->env());
    CHECK(follow.wait_for_line("fake-crosvm guest: chatter", 10s));
  }

  SECTION("SIGTERM: an upgrade leaves the fleet running; a VM killed meanwhile is restarted") {
    daemon->process->signal(SIGTERM);
    REQUIRE(daemon->process->wait_exit(30s) == 0);
    CHECK_THAT(daemon->process->output(), Catch::Contains("2 VM(s) of its fleets left running"));
    for (const auto& [name, pid] : pids)
      CHECK(test::process_alive(pid));
    ::kill(pids["web-1"], SIGKILL);  // dies while no daemon runs
    reap(pids["web-1"]);
    daemon = std::make_unique<test::DaemonProcess>(options);
    REQUIRE(test::eventually(
        [&] {
          const auto status = fleet_json(*daemon, "shop");
          return status["ready"] == 2 && status["vms"][1]["restarts"] == 1;
        },
        20s));
    const auto now = pids_of(*daemon, "shop");
    CHECK(now.at("web-0") == pids["web-0"]);  // taken over
    CHECK(now.at("web-1") != pids["web-1"]);  // started again by its policy
    CHECK(fleet_json(*daemon, "shop")["vms"][1]["last_death"] == "UNKNOWN");
    CHECK(said(*daemon, "vm web-1: not taken over: pid " + std::to_string(pids["web-1"]) +
                            " no longer runs"));
    pids = now;
  }

  SECTION("a record naming a pid that another process has now is never taken over") {
    daemon->process->signal(SIGKILL);
    daemon->process->wait_exit(10s);
    // An unrelated process, and web-0's record rewritten to name its pid: as if web-0's VMM had
    // ended and the pid gone to someone else.
    test::Subprocess stranger({"/bin/sleep", "60"}, {});
    const auto record_file = state / "vms/0/web-0.rec";
    auto record = store::vm_record_from(*store::read_record(record_file));
    REQUIRE(record);
    record->pid = stranger.pid();
    REQUIRE(store::write_record(record_file, store::to_json(*record)));
    daemon = std::make_unique<test::DaemonProcess>(options);
    REQUIRE(test::eventually([&] { return all_ready(*daemon, "shop"); }, 20s));
    CHECK(said(*daemon, "vm web-0: not taken over: pid " + std::to_string(stranger.pid()) +
                            " is another process now"));
    CHECK(test::process_alive(stranger.pid()));  // never signalled
    CHECK(pids_of(*daemon, "shop").at("web-0") != stranger.pid());
    CHECK(pids_of(*daemon, "shop").at("web-1") == pids["web-1"]);
    left.add(pids_of(*daemon, "shop").at("web-0"));
    // The real web-0 VMM runs on, unowned: this test ends it.
    ::kill(pids["web-0"], SIGKILL);
    reap(pids["web-0"]);
    pids = pids_of(*daemon, "shop");
  }

  // However it got here, the fleet goes down cleanly: every VMM ends, nothing stays behind.
  const auto down = daemon->vm("fleet down shop");
  INFO(down.output);
  CHECK(down.exit_code == 0);
  for (const auto& [name, pid] : pids) {
    reap(pid);
    CHECK_FALSE(test::process_alive(pid));
  }
  // Records and directories go behind the deaths (the state keeper writes in the background).
  CHECK(test::eventually([&] { return std::filesystem::is_empty(state / "run"); }, 5s));
  CHECK(test::eventually([&] { return std::filesystem::is_empty(state / "vms/0"); }, 5s));
  CHECK(
      test::eventually([&] { return !std::filesystem::exists(state / "fleets/0/shop.rec"); }, 5s));
  daemon->process->signal(SIGTERM);
  CHECK(daemon->process->wait_exit(30s) == 0);
}

TEST_CASE(
    "three real guests of a persistent fleet survive kill -9 of crosvisord and a restart, "
    "consoles and uptime carry on, and fleet down stops them") {
  test::require_guest();
  Subreaper subreaper;
  test::TempDir state;
  const test::DaemonOptions options{.args = {"--live-restore"}, .state_dir = state.path()};
  std::string keys = test::guest_toml("x", "cv.tick=0.5 cv.shell=1");
  keys = keys.substr(keys.find('\n') + 1);
  const auto file = state.write("trio.toml", "[fleet]\nname = \"trio\"\n[defaults]\n" + keys +
                                                 "[[vm]]\nname = \"g-{index}\"\ncount = 3\n");
  auto daemon = std::make_unique<test::DaemonProcess>(options);
  const auto pids = up_and_ready(*daemon, file, "trio", 3, 120s, "--persist ");
  LeftRunning left;
  for (const auto& [name, pid] : pids)
    left.add(pid);

  for (const int signo : {SIGKILL, SIGTERM}) {
    INFO("crosvisord ended by signal " << signo);
    daemon->process->signal(signo);
    daemon->process->wait_exit(30s);
    std::this_thread::sleep_for(2s);  // ticks while no daemon runs
    for (const auto& [name, pid] : pids)
      CHECK(test::process_alive(pid));
    const auto restarted = std::chrono::steady_clock::now();
    daemon = std::make_unique<test::DaemonProcess>(options);
    // Taken over, not booted again: ready at once (a boot takes seconds under TCG). The time
    // is reported, not asserted.
    REQUIRE(test::eventually([&] { return all_ready(*daemon, "trio"); }, 5s));
    WARN("signal " << signo << ": a new crosvisord started and took 3 guests over in "
                   << std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - restarted)
                          .count()
                   << " ms");
    CHECK(fleet_json(*daemon, "trio")["persistent"] == true);
    CHECK(pids_of(*daemon, "trio") == pids);
    const auto info = json::parse(daemon->vm("info g-0 --json").output);
    CHECK(info["uptime_ms"].get<std::int64_t>() > 2000);
    // The guest ticked on; every tick is in its log, the ones printed while no daemon ran too.
    const auto log = daemon->dir / "logs/0/g-0.log";
    REQUIRE(test::eventually([&] { return numbered(log, "tick").size() > 2; }, 10s));
    CHECK(without_gap(numbered(log, "tick")));
  }

  // vm logs -f and vm console work on VMs taken over.
  test::Subprocess follow({VM_BINARY, "logs", "-f", "g-1"}, daemon->env());
  CHECK(follow.wait_for_line("crosvisor-guest: tick", 10s));
  test::PtyProcess console({VM_BINARY, "console", "g-2"}, daemon->env());
  REQUIRE(console.wait_for("Escape character is ^] (Ctrl + ])", 30s));
  console.type("\r");
  CHECK(console.wait_for("cv# ", 30s));
  console.type("echo taken-$((6*7))\r");
  CHECK(console.wait_for("taken-42", 30s));
  console.type(std::string(1, 0x1d));
  CHECK(console.wait_exit(30s) == 0);

  const auto down = daemon->vm("fleet down trio --json");
  INFO(down.output);
  REQUIRE(down.exit_code == 0);
  const json downed = json::parse(down.output);
  for (const auto& vm : downed["vms"])
    CHECK(vm["last_death"] == "SHUTDOWN");  // powered off through QMP, as asked
  for (const auto& [name, pid] : pids) {
    reap(pid);
    CHECK_FALSE(test::process_alive(pid));
  }
  CHECK(test::eventually([&] { return std::filesystem::is_empty(state / "run"); }, 5s));
  // Down, a persistent fleet stays defined for the next start, until forgotten.
  CHECK(daemon->vm("fleet forget trio").exit_code == 0);
  daemon->process->signal(SIGTERM);
  CHECK(daemon->process->wait_exit(30s) == 0);
}

TEST_CASE(
    "every VMM left running is taken over, even one whose dependency died, and even by a "
    "daemon without --live-restore") {
  Subreaper subreaper;
  test::TempDir state;
  std::string keys = test::fake_crosvm_toml("x", "", false);
  keys = keys.substr(keys.find('\n') + 1);
  // web starts after db; neither is restarted by policy (restart = "never", the default).
  const auto file = state.write("pair.toml", "[fleet]\nname = \"pair\"\n[defaults]\n" + keys +
                                                 "[[vm]]\nname = \"db\"\n"
                                                 "[[vm]]\nname = \"web\"\nafter = [\"db\"]\n");
  std::map<std::string, pid_t> pids;
  LeftRunning left;
  {
    test::DaemonProcess daemon({.args = {"--live-restore"}, .state_dir = state.path()});
    REQUIRE(daemon.vm("fleet up " + file.string()).exit_code == 0);
    REQUIRE(test::eventually([&] { return all_ready(daemon, "pair"); }, 20s));
    pids = pids_of(daemon, "pair");
    for (const auto& [name, pid] : pids)
      left.add(pid);
    daemon.process->signal(SIGKILL);
    daemon.process->wait_exit(10s);
  }
  ::kill(pids["db"], SIGKILL);  // db dies while no daemon runs; web runs on
  reap(pids["db"]);
  // A daemon started without --live-restore on the same state directory (a user's on-demand
  // daemon, a unit without the flag) still takes web over: never a second web.
  test::DaemonProcess daemon({.state_dir = state.path()});
  REQUIRE(test::eventually(
      [&] {
        const auto status = fleet_json(daemon, "pair");
        return status["vms"][1]["state"] == "ready" && status["vms"][0]["state"] == "dead";
      },
      10s));
  CHECK(pids_of(daemon, "pair").at("web") == pids["web"]);
  CHECK(test::processes_with_cmdline("--name web ").size() == 1);
  const auto status = fleet_json(daemon, "pair");
  // db was up, and died while no daemon ran: dead, not restarted (its policy says never).
  CHECK(status["vms"][0]["last_death"] == "UNKNOWN");
  CHECK(status["vms"][0]["restarts"] == 0);
  // Its SIGTERM brings the fleet down (it does not restore live): web stops too.
  daemon.process->signal(SIGTERM);
  CHECK(daemon.process->wait_exit(30s) == 0);
  reap(pids["web"]);
  CHECK_FALSE(test::process_alive(pids["web"]));
}

TEST_CASE(
    "a fleet's network outlives crosvisord with its VMs: the next daemon finds its namespace "
    "again through its dnsmasq or, that gone, a VM's TAP, and fleet down leaves nothing") {
  if (::geteuid() != 0) {
    WARN("skipped: networks need root");
    return;
  }
  Subreaper subreaper;
  test::TempDir state;
  const test::DaemonOptions options{.args = {"--live-restore"}, .state_dir = state.path()};
  std::string keys = test::fake_crosvm_toml("x", "", false);
  keys = keys.substr(keys.find('\n') + 1);
  const auto file = state.write("lan.toml",
                                "[fleet]\nname = \"lan\"\n"
                                "[[network]]\nname = \"lan\"\ndns = true\n"
                                "[defaults]\n" +
                                    keys +
                                    "networks = [\"lan\"]\n"
                                    "[[vm]]\nname = \"n-{index}\"\ncount = 2\n");
  auto daemon = std::make_unique<test::DaemonProcess>(options);
  auto pids = up_and_ready(*daemon, file, "lan", 2, 20s);
  LeftRunning left;
  for (const auto& [name, pid] : pids)
    left.add(pid);
  std::vector<pid_t> dnsmasq;
  for (const pid_t child : test::children_of(daemon->process->pid())) {
    std::ifstream comm("/proc/" + std::to_string(child) + "/comm");
    std::string name;
    if (std::getline(comm, name) && name == "dnsmasq")
      dnsmasq.push_back(child);
  }
  REQUIRE(dnsmasq.size() == 1);
  left.add(dnsmasq[0]);
  const ino_t space = net_namespace_of(dnsmasq[0]);
  REQUIRE(space != 0);
  std::map<std::string, std::string> addresses;
  for (const auto& [name, pid] : pids)
    addresses[name] = nic_address(*daemon, name);
  CHECK(addresses["n-0"] != addresses["n-1"]);
  const auto record = state / "networks" / std::to_string(::getuid()) / "lan.rec";
  CHECK(std::filesystem::exists(record));

  // kill -9: dnsmasq runs on in its namespace, and the next daemon takes it over with it.
  daemon->process->signal(SIGKILL);
  daemon->process->wait_exit(10s);
  std::this_thread::sleep_for(300ms);
  CHECK(test::process_alive(dnsmasq[0]));
  daemon = std::make_unique<test::DaemonProcess>(options);
  CHECK(said(*daemon,
             "network lan: taken over with its dnsmasq (pid " + std::to_string(dnsmasq[0]) + ")"));
  REQUIRE(test::eventually([&] { return all_ready(*daemon, "lan"); }, 10s));
  CHECK(pids_of(*daemon, "lan") == pids);
  CHECK(in_namespace(space, "dnsmasq") == dnsmasq);
  for (const auto& [name, address] : addresses)
    CHECK(nic_address(*daemon, name) == address);  // vm info says what it has, as before

  // A VM started again joins the same network, with the same address, on a new TAP named after
  // the ones there.
  REQUIRE(daemon->vm("fleet restart n-1").exit_code == 0);
  const pid_t restarted = pids_of(*daemon, "lan").at("n-1");
  CHECK(restarted != pids["n-1"]);
  left.add(restarted);
  pids["n-1"] = restarted;
  CHECK(nic_address(*daemon, "n-1") == addresses["n-1"]);
  const auto log = daemon->vm("logs n-1").output;
  INFO(log);
  CHECK_THAT(log, Catch::Contains("fake-crosvm: net 0: tap tap2 "));
  CHECK(test::tap_namespace_of(restarted) == space);

  SECTION("its dnsmasq gone too, it is found through a VM's TAP; fleet down leaves nothing") {
    daemon->process->signal(SIGKILL);
    daemon->process->wait_exit(10s);
    ::kill(dnsmasq[0], SIGKILL);
    reap(dnsmasq[0]);
    daemon = std::make_unique<test::DaemonProcess>(options);
    CHECK(said(*daemon, "network lan: its dnsmasq is gone; taken over through a TAP of pid"));
    REQUIRE(test::eventually([&] { return all_ready(*daemon, "lan"); }, 10s));
    CHECK(pids_of(*daemon, "lan") == pids);
    std::vector<pid_t> served;
    CHECK(test::eventually(
        [&] {
          served = in_namespace(space, "dnsmasq");
          return served.size() == 1;
        },
        10s));
    for (const pid_t pid : served)
      left.add(pid);

    // SIGTERM of a live-restoring daemon (an upgrade): the same again.
    daemon->process->signal(SIGTERM);
    CHECK(daemon->process->wait_exit(30s) == 0);
    daemon = std::make_unique<test::DaemonProcess>(options);
    REQUIRE(test::eventually([&] { return all_ready(*daemon, "lan"); }, 10s));
    CHECK(pids_of(*daemon, "lan") == pids);
    CHECK(in_namespace(space, "dnsmasq") == served);

    REQUIRE(daemon->vm("fleet down lan").exit_code == 0);
    for (const auto& [name, pid] : pids)
      reap(pid);
    for (const pid_t pid : served)
      reap(pid);
    CHECK(test::eventually([&] { return in_namespace(space, "dnsmasq").empty(); }, 10s));
    for (const auto& [name, pid] : pids)
      CHECK_FALSE(test::process_alive(pid));
    // Dropped once dnsmasq is reaped, by the state keeper: a moment after.
    CHECK(test::eventually([&] { return !std::filesystem::exists(record); }, 5s));
    CHECK(test::eventually([&] { return std::filesystem::is_empty(state / "run"); }, 5s));
  }

  SECTION("its fleet forgotten while no daemon ran, its dnsmasq and VMs are ended") {
    daemon->process->signal(SIGKILL);
    daemon->process->wait_exit(10s);
    std::filesystem::remove(state / "fleets" / std::to_string(::getuid()) / "lan.rec");
    daemon = std::make_unique<test::DaemonProcess>(options);
    CHECK(said(*daemon, "network lan runs, but its fleet lan is gone: killing its dnsmasq"));
    reap(dnsmasq[0]);
    for (const auto& [name, pid] : pids)
      reap(pid);
    CHECK(test::eventually([&] { return in_namespace(space, "dnsmasq").empty(); }, 10s));
    for (const auto& [name, pid] : pids)
      CHECK_FALSE(test::process_alive(pid));
    CHECK(test::eventually([&] { return !std::filesystem::exists(record); }, 5s));
    CHECK(std::filesystem::is_empty(state / "run"));
  }
}

TEST_CASE(
    "real guests keep their network through kill -9 of crosvisord: one started again gets its "
    "address from the dnsmasq taken over and reaches the other, never restarted, by name") {
  test::require_guest();
  if (::geteuid() != 0) {
    WARN("skipped: networks need root");
    return;
  }
  Subreaper subreaper;
  test::TempDir state;
  const test::DaemonOptions options{.args = {"--live-restore"}, .state_dir = state.path()};
  std::string keys = test::guest_toml("x", "");
  keys = keys.substr(keys.find('\n') + 1);
  keys = std::regex_replace(keys, std::regex("params = .*\n"), "");
  const auto params = [](const std::string& args) {
    return "params = \"console=ttyS0 reboot=t panic=-1 " + args + "\"\n";
  };
  const auto file =
      state.write("pair.toml",
                  "[fleet]\nname = \"pair\"\n"
                  "[[network]]\nname = \"back\"\nsubnet = \"198.19.210.0/24\"\ndns = true\n"
                  "[defaults]\n" +
                      keys + "[[vm]]\nname = \"db\"\n" + params("cv.serve=80") +
                      "networks = [ { name = \"back\", address = \"198.19.210.10\" } ]\n"
                      "[[vm]]\nname = \"web\"\nafter = [\"db\"]\n" +
                      params("cv.fetch=db:80") + "networks = [\"back\"]\n");
  auto daemon = std::make_unique<test::DaemonProcess>(options);
  const auto pids = up_and_ready(*daemon, file, "pair", 2, 120s);
  LeftRunning left;
  for (const auto& [name, pid] : pids)
    left.add(pid);
  for (const pid_t child : test::children_of(daemon->process->pid()))
    left.add(child);  // dnsmasq
  const std::string web_address = nic_address(*daemon, "web");
  REQUIRE_FALSE(web_address.empty());
  const auto web_log = daemon->dir / "logs/0/web.log";
  const auto count_in = [](const std::filesystem::path& path, const std::string& needle) {
    std::ifstream in(path);
    const std::string text{std::istreambuf_iterator<char>(in), {}};
    std::size_t count = 0;
    for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
      ++count;
    return count;
  };
  REQUIRE(test::eventually([&] { return count_in(web_log, "fetched db:80: hello from db") == 1; },
                           30s));

  daemon->process->signal(SIGKILL);
  daemon->process->wait_exit(10s);
  daemon = std::make_unique<test::DaemonProcess>(options);
  REQUIRE(test::eventually([&] { return all_ready(*daemon, "pair"); }, 10s));
  CHECK(pids_of(*daemon, "pair") == pids);

  // web boots again: DHCP and DNS from the dnsmasq taken over, TCP to db on the same bridge.
  const auto restart = daemon->vm("fleet restart web");
  INFO(restart.output);
  REQUIRE(restart.exit_code == 0);
  const pid_t web = pids_of(*daemon, "pair").at("web");
  CHECK(web != pids.at("web"));
  left.add(web);
  CHECK(pids_of(*daemon, "pair").at("db") == pids.at("db"));
  CHECK(nic_address(*daemon, "web") == web_address);
  // The new daemon's log of web (its runtime directory is its own): this boot's lines.
  const auto new_log = daemon->dir / "logs/0/web.log";
  CHECK(test::eventually(
      [&] { return count_in(new_log, "crosvisor-guest: net eth0 " + web_address + "/24") == 1; },
      30s));
  CHECK(test::eventually([&] { return count_in(new_log, "fetched db:80: hello from db") == 1; },
                         30s));

  REQUIRE(daemon->vm("fleet down pair").exit_code == 0);
  for (const auto& vmm : left.vmms)
    reap(vmm.pid);
  for (const auto& vmm : left.vmms)
    CHECK_FALSE(test::process_alive(vmm.pid));
  CHECK(test::eventually([&] { return std::filesystem::is_empty(state / "run"); }, 5s));
}

TEST_CASE(
    "VMs named on crosvisord's command line outlive it with --live-restore, are taken over by "
    "a daemon with the same command line, and ended by one that does not name them") {
  Subreaper subreaper;
  test::TempDir state;
  const auto solo = state.write("solo.toml", test::fake_crosvm_toml("solo", "", false));
  const auto duo = state.write("duo.toml", test::fake_crosvm_toml("duo", "", false));
  const test::DaemonOptions both{.args = {"--live-restore", solo.string(), duo.string()},
                                 .state_dir = state.path()};
  const auto pid_of = [](const test::DaemonProcess& daemon, const std::string& vm) -> pid_t {
    const auto out = daemon.vm("info --json " + vm);
    if (out.exit_code != 0)
      return -1;
    const json info = json::parse(out.output);
    return info["pid"].is_null() ? -1 : info["pid"].get<pid_t>();
  };
  const auto ready = [](const test::DaemonProcess& daemon, const std::string& vm) {
    const auto out = daemon.vm("info --json " + vm);
    return out.exit_code == 0 && json::parse(out.output)["state"] == "ready";
  };
  auto daemon = std::make_unique<test::DaemonProcess>(both);
  REQUIRE(test::eventually([&] { return ready(*daemon, "solo") && ready(*daemon, "duo"); }, 20s));
  const pid_t solo_pid = pid_of(*daemon, "solo");
  const pid_t duo_pid = pid_of(*daemon, "duo");
  LeftRunning left;
  left.add(solo_pid);
  left.add(duo_pid);

  for (const int signo : {SIGKILL, SIGTERM}) {
    INFO("crosvisord ended by signal " << signo);
    daemon->process->signal(signo);
    daemon->process->wait_exit(30s);
    CHECK(test::process_alive(solo_pid));
    CHECK(test::process_alive(duo_pid));
    daemon = std::make_unique<test::DaemonProcess>(both);
    CHECK(test::eventually([&] { return ready(*daemon, "solo") && ready(*daemon, "duo"); }, 10s));
    CHECK(pid_of(*daemon, "solo") == solo_pid);
    CHECK(pid_of(*daemon, "duo") == duo_pid);
  }

  // A daemon whose command line names only solo: duo is nobody's any more, and is ended.
  daemon->process->signal(SIGKILL);
  daemon->process->wait_exit(10s);
  daemon = std::make_unique<test::DaemonProcess>(
      test::DaemonOptions{.args = {"--live-restore", solo.string()}, .state_dir = state.path()});
  CHECK(said(*daemon,
             "state: VM duo of the command line before runs, but this one does not "
             "name it: killing it (pid " +
                 std::to_string(duo_pid) + ")"));
  reap(duo_pid);
  CHECK_FALSE(test::process_alive(duo_pid));
  CHECK(test::eventually([&] { return ready(*daemon, "solo"); }, 10s));
  CHECK(pid_of(*daemon, "solo") == solo_pid);

  // Without --live-restore, its SIGTERM stops what it took over.
  daemon->process->signal(SIGKILL);
  daemon->process->wait_exit(10s);
  daemon = std::make_unique<test::DaemonProcess>(
      test::DaemonOptions{.args = {solo.string()}, .state_dir = state.path()});
  CHECK(test::eventually([&] { return ready(*daemon, "solo"); }, 10s));
  CHECK(pid_of(*daemon, "solo") == solo_pid);
  daemon->process->signal(SIGTERM);
  CHECK(daemon->process->wait_exit(30s) == 0);
  reap(solo_pid);
  CHECK_FALSE(test::process_alive(solo_pid));
  CHECK(std::filesystem::is_empty(state / "vms" / "daemon"));
  CHECK(std::filesystem::is_empty(state / "run"));
}
