// Networks of real guests (QEMU TCG) and of crosvm stand-ins: DHCP addresses, names, TCP between
// guests, isolation between networks and from the host, and nothing left behind by fleet down or
// by a daemon killed with SIGKILL (namespaces, dnsmasq, TAPs, files).
#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "core/unique_fd.hpp"
#include "integration/daemon_process.hpp"
#include "integration/guest.hpp"
#include "integration/net_probe.hpp"
#include "support/processes.hpp"
#include "support/subprocess.hpp"

using namespace crosvisor;
using namespace std::chrono_literals;

namespace {

// The inode of the network namespace of `pid` (0 if it is gone).
ino_t net_namespace_of(pid_t pid) {
  struct stat info {};
  const auto path = "/proc/" + std::to_string(pid) + "/ns/net";
  return ::stat(path.c_str(), &info) == 0 ? info.st_ino : 0;
}

// Whether any process is in the network namespace `inode`.
bool namespace_in_use(ino_t inode) {
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const auto name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") == std::string::npos &&
        net_namespace_of(std::stoi(name)) == inode)
      return true;
  }
  return false;
}

std::vector<pid_t> dnsmasqs_of(pid_t daemon) {
  std::vector<pid_t> found;
  for (const pid_t child : test::children_of(daemon)) {
    std::ifstream comm("/proc/" + std::to_string(child) + "/comm");
    std::string name;
    if (std::getline(comm, name) && name == "dnsmasq" && test::process_alive(child))
      found.push_back(child);
  }
  return found;
}

// A non-loopback IPv4 address of this host: what a guest must not reach.
std::string host_address() {
  ifaddrs* list = nullptr;
  REQUIRE(::getifaddrs(&list) == 0);
  std::string found;
  for (auto* entry = list; entry && found.empty(); entry = entry->ifa_next) {
    if (!entry->ifa_addr || entry->ifa_addr->sa_family != AF_INET)
      continue;
    char text[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(entry->ifa_addr)->sin_addr, text,
                sizeof(text));
    if (std::string(text).rfind("127.", 0) != 0)
      found = text;
  }
  ::freeifaddrs(list);
  REQUIRE_FALSE(found.empty());
  return found;
}

// A listener on every address of the host, to see whether anything reached it.
struct HostListener {
  UniqueFd fd{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)};
  int port = 0;
  HostListener() {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
    REQUIRE(::listen(fd.get(), 8) == 0);
    socklen_t size = sizeof(address);
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &size);
    port = ntohs(address.sin_port);
  }
  bool reached() const { return ::accept(fd.get(), nullptr, nullptr) >= 0; }
};

nlohmann::json info_of(const test::DaemonProcess& daemon, const std::string& vm) {
  const auto out = daemon.vm("info --json " + vm);
  INFO(out.output);
  REQUIRE(out.exit_code == 0);
  return nlohmann::json::parse(out.output);
}

std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t count = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
    ++count;
  return count;
}

std::string guest_keys() {
  std::string keys = test::guest_toml("x", "");
  keys = keys.substr(keys.find('\n') + 1);                           // without the name
  return std::regex_replace(keys, std::regex("params = .*\n"), "");  // each VM has its own
}

std::string params(const std::string& guest_args) {
  return "params = \"console=ttyS0 reboot=t panic=-1 " + guest_args + "\"\n";
}

}  // namespace

TEST_CASE(
    "a fleet's guests get their addresses by DHCP, find each other by name and talk over "
    "TCP, a second network and the host stay out of reach, and fleet down leaves nothing") {
  test::require_guest();
  if (::geteuid() != 0) {
    WARN("skipped: networks need root");
    return;
  }
  test::DaemonProcess daemon;
  HostListener host;
  const std::string host_target = host_address() + ":" + std::to_string(host.port);
  const auto file = daemon.dir.write(
      "net.toml",
      "[fleet]\nname = \"net\"\nconcurrency = 4\n"
      "[[network]]\nname = \"back\"\nsubnet = \"198.19.200.0/24\"\ndns = true\n"
      "[[network]]\nname = \"other\"\nsubnet = \"198.19.201.0/24\"\n"
      "[defaults]\n" +
          guest_keys() + "[[vm]]\nname = \"db\"\n" + params("cv.serve=80") +
          "networks = [ { name = \"back\", address = \"198.19.200.10\" } ]\n"
          // Started once db serves: it must not reach db, by address or by name.
          "[[vm]]\nname = \"iso\"\nafter = [\"db\"]\n" +
          params("cv.serve=80 cv.probe=198.19.200.10:80,db:80") +
          "networks = [ { name = \"other\", address = \"198.19.201.10\" } ]\n"
          "[[vm]]\nname = \"web-{index}\"\ncount = 2\nafter = [\"iso\"]\n" +
          params("cv.serve=80 cv.fetch=db:80 cv.probe=198.19.200.10:80,198.19.201.10:80," +
                 host_target) +
          "networks = [\"back\"]\n");
  const auto up = daemon.vm("fleet up " + file.string());
  INFO(up.output);
  REQUIRE(up.exit_code == 0);
  CHECK_THAT(up.output, Catch::Contains("fleet net: 4 of 4 ready"));

  const auto dnsmasqs = dnsmasqs_of(daemon.process->pid());
  REQUIRE(dnsmasqs.size() == 2);  // one per network
  std::vector<ino_t> spaces;
  for (const pid_t pid : dnsmasqs)
    spaces.push_back(net_namespace_of(pid));
  CHECK(spaces[0] != spaces[1]);
  CHECK(spaces[0] != net_namespace_of(::getpid()));

  // Each guest's DHCP lease is the address vm info gives it.
  std::map<std::string, std::string> address_of;
  for (const std::string vm : {"db", "iso", "web-0", "web-1"}) {
    const auto info = info_of(daemon, vm);
    REQUIRE(info["nics"].size() == 1);
    const auto address = info["nics"][0]["address"].get<std::string>();
    const auto mac = info["nics"][0]["mac"].get<std::string>();
    address_of[vm] = address;
    const auto log = daemon.vm("logs " + vm).output;
    INFO(log);
    CHECK_THAT(log, Catch::Contains("crosvisor-guest: net eth0 " + address + "/24 mac=" + mac +
                                    " name=" + vm));
  }
  CHECK(address_of["db"] == "198.19.200.10");
  CHECK(address_of["iso"] == "198.19.201.10");
  CHECK(address_of["web-0"] != address_of["web-1"]);
  for (const std::string web : {"web-0", "web-1"}) {
    const auto log = daemon.vm("logs " + web).output;
    INFO(log);
    CHECK_THAT(log, Catch::Contains("crosvisor-guest: fetched db:80: hello from db"));
    CHECK_THAT(log, Catch::Contains("probe 198.19.200.10:80 open"));    // its own network
    CHECK_THAT(log, Catch::Contains("probe 198.19.201.10:80 closed"));  // the other one
    CHECK_THAT(log, Catch::Contains("probe " + host_target + " closed"));
  }
  const auto iso = daemon.vm("logs iso").output;
  CHECK_THAT(iso, Catch::Contains("probe 198.19.200.10:80 closed"));
  CHECK_THAT(iso, Catch::Contains("probe db:80 closed"));
  CHECK_FALSE(host.reached());

  // Started again, a VM has the same address (its MAC is the same, and dnsmasq's entry for it).
  const auto restart = daemon.vm("fleet restart web-1");
  CHECK(restart.exit_code == 0);
  // Its console log file has both boots.
  std::ifstream log_file(info_of(daemon, "web-1")["console_log"].get<std::string>());
  const std::string again{std::istreambuf_iterator<char>(log_file), {}};
  CHECK(count_of(again, "crosvisor-guest: net eth0 " + address_of["web-1"] + "/24") == 2);
  CHECK(info_of(daemon, "web-1")["nics"][0]["address"] == address_of["web-1"]);

  const auto down = daemon.vm("fleet down net");
  CHECK(down.exit_code == 0);
  for (const pid_t pid : dnsmasqs)
    CHECK(test::eventually([&] { return !test::process_alive(pid); }, 10s));
  for (const ino_t space : spaces)
    CHECK(test::eventually([&] { return !namespace_in_use(space); }, 10s));
  // The networks' files (dnsmasq's hosts and leases) went with them.
  for (const auto& run : std::filesystem::directory_iterator(daemon.dir / "run")) {
    const auto networks = run.path() / "networks";
    CHECK(test::eventually(
        [&] { return !std::filesystem::exists(networks) || std::filesystem::is_empty(networks); },
        10s));
  }
}

TEST_CASE(
    "the crosvm stand-in gets --net tap-fd with a TAP of the network's namespace, and a "
    "daemon killed with SIGKILL leaves no namespace, dnsmasq or file, and the next one "
    "starts clean") {
  if (::geteuid() != 0) {
    WARN("skipped: networks need root");
    return;
  }
  test::DaemonProcess daemon;
  std::string member = test::fake_crosvm_toml("x", "", false);
  member = member.substr(member.find('\n') + 1);
  const auto file =
      daemon.dir.write("lan.toml",
                       "[fleet]\nname = \"lan\"\n[[network]]\nname = \"lan\"\n"
                       "[defaults]\n" +
                           member +
                           "networks = [\"lan\"]\n"
                           "[[vm]]\nname = \"a\"\n"
                           "networks = [ { name = \"lan\", mac = \"02:00:00:00:0a:01\" } ]\n"
                           "[[vm]]\nname = \"b-{index}\"\ncount = 2\n");
  const auto up = daemon.vm("fleet up " + file.string());
  INFO(up.output);
  REQUIRE(up.exit_code == 0);
  const auto dnsmasqs = dnsmasqs_of(daemon.process->pid());
  REQUIRE(dnsmasqs.size() == 1);
  const ino_t space = net_namespace_of(dnsmasqs[0]);
  for (const std::string vm : {"a", "b-0", "b-1"}) {
    const auto info = info_of(daemon, vm);
    const auto mac = info["nics"][0]["mac"].get<std::string>();
    if (vm == "a")
      CHECK(mac == "02:00:00:00:0a:01");
    // The stand-in's checks passed (a TAP with vnet headers, inherited and named); a confined
    // stand-in may not ask its TAP's namespace, so that is seen from here: the network's.
    const auto log = daemon.vm("logs " + vm).output;
    INFO(log);
    CHECK_THAT(log, Catch::Contains("fake-crosvm: net 0: tap tap"));
    CHECK_THAT(log, Catch::Contains(", mac " + mac + "\n"));
    CHECK(test::tap_namespace_of(info["pid"].get<pid_t>()) == space);
    CHECK(info["nics"][0]["address"].get<std::string>().rfind("198.18.", 0) == 0);
  }
  // dnsmasq is supervised: killed, it is reported and started again, in the same namespace.
  ::kill(dnsmasqs[0], SIGKILL);
  std::vector<pid_t> restarted;
  CHECK(test::eventually(
      [&] {
        restarted = dnsmasqs_of(daemon.process->pid());
        return restarted.size() == 1 && restarted[0] != dnsmasqs[0];
      },
      10s));
  REQUIRE(restarted.size() == 1);
  CHECK(net_namespace_of(restarted[0]) == space);
  CHECK(daemon.process->wait_for_line("network lan: dnsmasq ended (signal 9", 10s));

  // A lone VM joins the fleet's network by its name, and gets the next address.
  const auto lone = daemon.dir.write(
      "lone.toml", test::fake_crosvm_toml("lone", "", false) + "networks = [\"lan\"]\n");
  test::Subprocess lone_run({VM_BINARY, "run", lone.string()}, daemon.env());
  REQUIRE(lone_run.wait_for_line("vm lone: ready", 20s));
  CHECK(info_of(daemon, "lone")["nics"][0]["network"] == "lan");
  CHECK_THAT(daemon.vm("info lone").output, Catch::Contains("eth0: lan, 198.18."));

  const auto vmms = test::processes_with_cmdline("--name b-");
  REQUIRE(vmms.size() == 2);
  std::filesystem::path run_dir;
  for (const auto& run : std::filesystem::directory_iterator(daemon.dir / "run"))
    run_dir = run.path();
  REQUIRE(std::filesystem::exists(run_dir / "networks"));

  daemon.process->signal(SIGKILL);
  CHECK(test::eventually([&] { return !test::process_alive(restarted[0]); }, 10s));
  for (const pid_t pid : vmms)
    CHECK(test::eventually([&] { return !test::process_alive(pid); }, 10s));
  CHECK(test::eventually([&] { return !namespace_in_use(space); }, 10s));
  // Its files are left for the next daemon, which recognises them by their free lock.
  CHECK(std::filesystem::exists(run_dir / "networks"));
  test::Subprocess next({CROSVISORD_BINARY, "--socket", daemon.socket.string(), "--crosvm",
                         FAKE_CROSVM_BINARY, "--runtime-dir", (daemon.dir / "run").string()});
  REQUIRE(next.wait_for_line("serving ", 20s));
  CHECK_FALSE(std::filesystem::exists(run_dir));
  // And it brings the same fleet up again.
  const auto again = daemon.vm("fleet up " + file.string());
  CHECK(again.exit_code == 0);
  CHECK(daemon.vm("fleet down lan").exit_code == 0);
}

TEST_CASE("a VM that names a network nobody brought up is refused, saying so") {
  test::DaemonProcess daemon;
  const auto file = daemon.dir.write(
      "lone.toml", test::fake_crosvm_toml("lone", "", false) + "networks = [\"nowhere\"]\n");
  const auto run = daemon.vm("run " + file.string());
  CHECK(run.exit_code == 5);  // not found
  CHECK_THAT(run.output, Catch::Contains("no network named nowhere of yours is up"));
  CHECK(daemon.vm("list --json").output == "[]\n");
}
