// Confined VMMs (docs/sandbox.md) under a root crosvisord with --shared: a user's VM has a VMM
// that runs as that user with nothing more, a real guest boots and stops so, and a VMM that
// turns hostile (the crosvm stand-in's hostile mode) reaches nothing of the host. Then each
// VMM's cgroup: its limits, an OOM kill as its own death, and a host without cgroups.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "core/exit_codes.hpp"
#include "integration/daemon_process.hpp"
#include "integration/guest.hpp"
#include "integration/other_user.hpp"
#include "process/cgroups.hpp"
#include "support/processes.hpp"

using namespace crosvisor;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

test::DaemonOptions shared_root_daemon(const test::OtherUser& nobody) {
  return {.args = {"--shared", "--metrics", "127.0.0.1:0"},
          .crosvm = (nobody.bin / "crosvm").string()};
}

// The port crosvisord serves metrics on (a TCP service on the host's loopback).
std::string metrics_port(const test::DaemonProcess& daemon) {
  const std::string& said = daemon.process->output();
  const auto at = said.find("/metrics");
  const auto colon = said.rfind(':', at);
  return at == std::string::npos ? "0" : said.substr(colon + 1, at - colon - 1);
}

// The fields of /proc/PID/status, by name.
std::map<std::string, std::string> status_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::map<std::string, std::string> fields;
  for (std::string line; std::getline(in, line);) {
    const auto colon = line.find(':');
    if (colon == std::string::npos)
      continue;
    const auto value = line.find_first_not_of(" \t", colon + 1);
    fields[line.substr(0, colon)] = value == std::string::npos ? "" : line.substr(value);
  }
  return fields;
}

std::string namespace_of(pid_t pid, const char* kind) {
  std::error_code ec;
  return std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/ns/" + kind, ec).string();
}

// `vm ARGS` as nobody, against the root daemon.
test::CommandResult vm_of(const test::OtherUser& nobody, const test::DaemonProcess& daemon,
                          const std::string& args) {
  return nobody.vm(args, {"CROSVISOR_SOCKET=" + daemon.socket.string()});
}

// nobody's VM NAME as `vm info --json` shows it.
json info(const test::OtherUser& nobody, const test::DaemonProcess& daemon,
          const std::string& name) {
  const auto out = vm_of(nobody, daemon, "info --json " + name);
  if (out.exit_code != 0)
    return json::object();
  return json::parse(out.output, nullptr, false);
}

// Starts nobody's VM of `file` (detached) and waits until it is ready: its VMM's pid.
pid_t start_ready(const test::OtherUser& nobody, const test::DaemonProcess& daemon,
                  const std::filesystem::path& file, const std::string& name,
                  std::chrono::seconds limit) {
  const auto started = vm_of(nobody, daemon, "start " + file.string());
  INFO(started.output);
  REQUIRE(started.exit_code == 0);
  json vm;
  REQUIRE(test::eventually(
      [&] {
        vm = info(nobody, daemon, name);
        return vm.value("state", "") == "ready";
      },
      limit));
  return vm["pid"].get<pid_t>();
}

void check_confined(pid_t vmm, pid_t daemon) {
  const auto status = status_of(vmm);
  INFO("VMM pid " << vmm);
  CHECK_THAT(status.at("Uid"), Catch::StartsWith("65534\t65534\t65534\t65534"));
  CHECK_THAT(status.at("Gid"), Catch::StartsWith("65534\t65534\t65534\t65534"));
  CHECK(status.at("CapEff") == "0000000000000000");
  CHECK(status.at("CapPrm") == "0000000000000000");
  CHECK(status.at("CapBnd") == "0000000000000000");
  CHECK(status.at("NoNewPrivs") == "1");
  for (const char* kind : {"mnt", "pid", "ipc", "uts", "net"}) {
    INFO(kind);
    CHECK(namespace_of(vmm, kind) != namespace_of(daemon, kind));
  }
  // Its pid namespace's first process: itself.
  CHECK_THAT(status.at("NSpid"), Catch::EndsWith("\t1"));
}

}  // namespace

TEST_CASE(
    "a confined VMM turned hostile: no host file, no ptrace or signal of crosvisord, no root, "
    "no mount") {
  if (::geteuid() != 0) {
    WARN("skipped: confinement needs a root crosvisord");
    return;
  }
  test::OtherUser nobody;
  test::DaemonProcess daemon(shared_root_daemon(nobody));
  const pid_t crosvisord = daemon.process->pid();
  const auto file = nobody.write(
      "hostile.toml",
      nobody.stand_in_toml("hostile", "fake_crosvm.hostile=" + std::to_string(crosvisord) +
                                          " fake_crosvm.hostile_port=" + metrics_port(daemon)));
  const pid_t vmm = start_ready(nobody, daemon, file, "hostile", 20s);
  check_confined(vmm, crosvisord);

  const auto logs = vm_of(nobody, daemon, "logs hostile");
  INFO(logs.output);
  CHECK_THAT(logs.output, !Catch::Contains(": DONE"));
  const auto said = [&](const std::string& line) {
    CHECK_THAT(logs.output, Catch::Contains("fake-crosvm hostile: " + line));
  };
  said("read /etc/shadow: No such file or directory");
  said("read /etc/passwd: No such file or directory");
  said("read /root: No such file or directory");
  said("read /home: No such file or directory");
  said("read /proc/" + std::to_string(crosvisord) + "/environ: No such file or directory");
  said("write /usr/crosvisor-hostile: Read-only file system");
  said("write /etc/crosvisor-hostile: Read-only file system");
  // crosvisord's pid means no process in the VMM's pid namespace.
  said("ptrace " + std::to_string(crosvisord) + ": No such process");
  said("signal " + std::to_string(crosvisord) + ": No such process");
  said("setuid 0: Operation not permitted");
  said("mount: Operation not permitted");
  // Its own network namespace: the host's loopback services are out of reach.
  said("connect 127.0.0.1:" + metrics_port(daemon) + ": Network is unreachable");
  CHECK(test::process_alive(crosvisord));
  CHECK_FALSE(std::filesystem::exists("/usr/crosvisor-hostile"));

  REQUIRE(vm_of(nobody, daemon, "stop hostile").exit_code == 0);
  CHECK(test::eventually([&] { return !test::process_alive(vmm); }, 10s));
}

TEST_CASE(
    "a user's real guest under a root --shared daemon: its QEMU runs as the user with no "
    "capabilities, no_new_privs, seccomp and namespaces of its own, boots and stops") {
  if (::geteuid() != 0) {
    WARN("skipped: confinement needs a root crosvisord");
    return;
  }
  test::require_guest();
  test::OtherUser nobody;
  test::DaemonProcess daemon(shared_root_daemon(nobody));
  // The user's own copies of the guest (the build tree may be out of the user's reach).
  const std::filesystem::path guest = CROSVISOR_GUEST_DIR;
  for (const char* part : {"vmlinuz", "initramfs.cpio.gz"}) {
    std::filesystem::copy_file(guest / part, nobody.dir / part,
                               std::filesystem::copy_options::overwrite_existing);
    ::chmod((nobody.dir / part).c_str(), 0644);
  }
  std::string toml = test::guest_toml("boxed", "");
  for (const char* part : {"vmlinuz", "initramfs.cpio.gz"})
    toml.replace(toml.find((guest / part).string()), (guest / part).string().size(),
                 (nobody.dir / part).string());
  const auto file = nobody.write("boxed.toml", toml);
  const pid_t vmm = start_ready(nobody, daemon, file, "boxed", 60s);
  check_confined(vmm, daemon.process->pid());
  CHECK(status_of(vmm).at("Seccomp") == "2");  // QEMU's -sandbox

  const auto stopped = vm_of(nobody, daemon, "stop boxed");
  INFO(stopped.output);
  CHECK(stopped.exit_code == 0);
  REQUIRE(test::eventually([&] { return !test::process_alive(vmm); }, 30s));
  const auto dead = info(nobody, daemon, "boxed");
  INFO(dead.dump());
  CHECK(dead.value("state", "") == "dead");
  CHECK(dead.value("reason", "") == "SHUTDOWN");
}

namespace {

// The directory of `pid`'s cgroup in the hierarchy that has `controller` (v1), or its v2 one.
std::filesystem::path cgroup_dir_of(pid_t pid, const std::string& controller) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cgroup");
  std::string v2;
  for (std::string line; std::getline(in, line);) {
    const auto first = line.find(':');
    const auto second = line.find(':', first + 1);
    const std::string controllers = line.substr(first + 1, second - first - 1);
    const std::string path = line.substr(second + 1);
    if (controllers.empty())
      v2 = path;
    else if (("," + controllers + ",").find("," + controller + ",") != std::string::npos)
      return std::filesystem::path("/sys/fs/cgroup") / controllers /
             std::filesystem::path(path).relative_path();
  }
  for (const char* mount : {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"}) {
    const auto dir = std::filesystem::path(mount) / std::filesystem::path(v2).relative_path();
    if (std::filesystem::exists(dir / "cgroup.procs"))
      return dir;
  }
  return {};
}

std::string first_line(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

}  // namespace

TEST_CASE(
    "resource limits: each VMM in a cgroup of its own with its VM's limits, one past its "
    "memory limit dies OUT_OF_MEMORY, and no cgroup is left") {
  if (::geteuid() != 0) {
    WARN("skipped: cgroups need a root crosvisord");
    return;
  }
  const std::string probe = "crosvisor-probe-" + std::to_string(::getpid());
  auto host = process::CgroupHost::of_this_process(probe);
  if (!host) {
    WARN("skipped: this host gives crosvisor no cgroup subtree: " << host.error().message);
    return;
  }
  const auto version = host->version();
  for (const auto& base : host->bases())
    ::rmdir(base.dir.c_str());
  test::DaemonProcess daemon;
  const std::string limits =
      "memory_mib = 64\nmemory_overhead_mib = 32\npids_max = 16\n"
      "cpu_quota_percent = 50\n";
  const auto limited =
      daemon.dir.write("limited.toml", test::fake_crosvm_toml("limited", "", false) + limits);
  REQUIRE(daemon.vm("start " + limited.string()).exit_code == 0);
  json vm;
  REQUIRE(test::eventually(
      [&] {
        const auto out = daemon.vm("info --json limited");
        vm = json::parse(out.output, nullptr, false);
        return out.exit_code == 0 && vm.value("state", "") == "ready";
      },
      20s));
  const auto vmm = vm["pid"].get<pid_t>();
  const auto memory = cgroup_dir_of(vmm, "memory");
  INFO("its memory cgroup: " << memory);
  REQUIRE_FALSE(memory.empty());
  CHECK_THAT(memory.string(), Catch::Contains("/crosvisor-"));
  if (version == process::CgroupVersion::v1) {
    CHECK(first_line(memory / "memory.limit_in_bytes") == std::to_string(96 << 20));
    CHECK(first_line(cgroup_dir_of(vmm, "pids") / "pids.max") == "16");
    CHECK(first_line(cgroup_dir_of(vmm, "cpu") / "cpu.cfs_quota_us") == "50000");
  } else {
    CHECK(first_line(memory / "memory.max") == std::to_string(96 << 20));
    CHECK(first_line(memory / "pids.max") == "16");
    CHECK(first_line(memory / "cpu.max") == "50000 100000");
  }
  REQUIRE(daemon.vm("stop limited").exit_code == 0);
  CHECK(test::eventually([&] { return !std::filesystem::exists(memory); }, 10s));

  // A VMM that keeps eating: the kernel kills it at its limit, and that is its death.
  const auto hungry = daemon.dir.write(
      "hungry.toml", test::fake_crosvm_toml("hungry", "fake_crosvm.eat_mib=400", false) + limits);
  const auto ran = daemon.vm("run " + hungry.string());
  INFO(ran.output);
  CHECK(ran.exit_code == exit_code_for(DeathReason::out_of_memory));
  CHECK_THAT(ran.output, Catch::Contains("dead (OUT_OF_MEMORY)") &&
                             Catch::Contains("by the kernel's OOM killer"));
}

TEST_CASE(
    "resource limits where crosvisor has no cgroups: a VM that asks for them fails, saying why") {
  test::OtherUser nobody;  // nobody's own crosvisord may make no cgroup
  const auto file =
      nobody.write("limited.toml", nobody.stand_in_toml("limited", "", "pids_max = 16\n"));
  const auto ran = nobody.vm("run " + file.string());
  INFO(ran.output);
  CHECK(ran.exit_code == exit_code_for(DeathReason::start_failed));
  CHECK_THAT(ran.output, Catch::Contains("asks for resource limits") &&
                             Catch::Contains("crosvisor has no cgroups to give it"));
}
