// VM cgroups against a directory tree laid out like cgroupfs (a TEST DOUBLE: its interface files
// are plain files, which is all the logic reads and writes), for the v1 hybrid layout and v2
// with delegated controllers; then, as root where the host has a usable subtree, a real one.
#include "process/cgroups.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <sstream>

#include "process/launch.hpp"
#include "support/temp_dir.hpp"

using namespace crosvisor;
using process::CgroupVersion;

namespace {

std::string read(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void put(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

constexpr const char* kService = "/system.slice/crosvisord.service";

// A `sleep 30` that joined `vm`'s cgroup before exec, as a VMM does.
pid_t sleeper_in(const process::VmCgroup& vm) {
  process::LaunchRequest request;
  request.binary = "/bin/sleep";
  request.args = {"30"};
  request.join_cgroups = vm.procs_files();
  auto child = process::spawn_child(request);
  REQUIRE(child);
  return child->pid;
}

}  // namespace

TEST_CASE("cgroups, v1 hybrid: a hierarchy per controller, limits in v1's files, v1's counters") {
  test::TempDir fs;
  const std::string self = std::string("12:pids:") + kService + "\n5:memory:" + kService +
                           "\n4:cpu,cpuacct:" + kService + "\n1:name=systemd:" + kService +
                           "\n0::" + kService + "\n";
  const std::string mountinfo =
      "30 25 0:26 / /sys/fs/cgroup/unified rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate\n"
      "31 25 0:27 / /sys/fs/cgroup/memory rw,nosuid shared:10 - cgroup cgroup rw,memory\n"
      "32 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw shared:11 - cgroup cgroup rw,cpu,cpuacct\n"
      "33 25 0:29 / /sys/fs/cgroup/pids rw shared:12 - cgroup cgroup rw,pids\n"
      "40 25 0:30 / /proc rw - proc proc rw\n";
  put(fs / "sys/fs/cgroup/unified" / std::filesystem::path(kService).relative_path() /
          "cgroup.controllers",
      "\n");  // hybrid: v2 has no controller
  auto host = process::CgroupHost::find(self, mountinfo, fs.path(), "crosvisor");
  REQUIRE(host);
  CHECK(host->version() == CgroupVersion::v1);
  const auto under = [&](const char* hierarchy) {
    return fs / "sys/fs/cgroup" / hierarchy / std::filesystem::path(kService).relative_path() /
           "crosvisor";
  };
  REQUIRE(host->bases().size() == 3);
  CHECK(host->bases()[0].dir == under("memory"));
  CHECK(host->bases()[1].dir == under("cpu,cpuacct"));
  CHECK(host->bases()[2].dir == under("pids"));

  auto vm = host->make("vm-1", {512ull << 20, 150, 64});
  REQUIRE(vm);
  CHECK(read(under("memory") / "vm-1" / "memory.limit_in_bytes") == "536870912");
  CHECK(read(under("cpu,cpuacct") / "vm-1" / "cpu.cfs_period_us") == "100000");
  CHECK(read(under("cpu,cpuacct") / "vm-1" / "cpu.cfs_quota_us") == "150000");
  CHECK(read(under("pids") / "vm-1" / "pids.max") == "64");
  CHECK(vm->procs_files() ==
        std::vector<std::string>{(under("memory") / "vm-1" / "cgroup.procs").string(),
                                 (under("cpu,cpuacct") / "vm-1" / "cgroup.procs").string(),
                                 (under("pids") / "vm-1" / "cgroup.procs").string()});

  put(under("memory") / "vm-1" / "memory.usage_in_bytes", "1234\n");
  put(under("memory") / "vm-1" / "memory.oom_control",
      "oom_kill_disable 0\nunder_oom 0\n"
      "oom_kill 1\n");
  put(under("cpu,cpuacct") / "vm-1" / "cpuacct.usage", "5000000\n");
  put(under("pids") / "vm-1" / "pids.current", "3\n");
  const auto usage = vm->usage();
  CHECK(usage.memory_bytes == 1234u);
  CHECK(usage.oom_kills == 1u);
  CHECK(usage.cpu_usec == 5000u);
  CHECK(usage.pids == 3u);

  // No limit asked: a cgroup for its accounting and its kill, nothing written.
  auto plain = host->make("vm-2", {});
  REQUIRE(plain);
  CHECK_FALSE(std::filesystem::exists(under("memory") / "vm-2" / "memory.limit_in_bytes"));
}

TEST_CASE("cgroups, v2 delegated: one directory, limits in v2's files, v2's counters") {
  test::TempDir fs;
  const std::string self = std::string("0::") + kService + "\n";
  const std::string mountinfo =
      "30 25 0:26 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate\n";
  const auto own = fs / "sys/fs/cgroup" / std::filesystem::path(kService).relative_path();
  put(own / "cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n");
  auto host = process::CgroupHost::find(self, mountinfo, fs.path(), "crosvisor");
  REQUIRE(host);
  CHECK(host->version() == CgroupVersion::v2);
  REQUIRE(host->bases().size() == 1);
  CHECK(host->bases()[0].dir == own / "crosvisor");

  auto vm = host->make("vm-1", {256ull << 20, 50, 16});
  REQUIRE(vm);
  const auto dir = own / "crosvisor" / "vm-1";
  CHECK(read(dir / "memory.max") == "268435456");
  CHECK(read(dir / "cpu.max") == "50000 100000");
  CHECK(read(dir / "pids.max") == "16");
  CHECK(vm->procs_files() == std::vector<std::string>{(dir / "cgroup.procs").string()});
  put(dir / "cpu.stat", "usage_usec 42\nuser_usec 40\nsystem_usec 2\n");
  put(dir / "memory.current", "4096\n");
  put(dir / "pids.current", "2\n");
  put(dir / "memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n");
  const auto usage = vm->usage();
  CHECK(usage.cpu_usec == 42u);
  CHECK(usage.memory_bytes == 4096u);
  CHECK(usage.pids == 2u);
  CHECK(usage.oom_kills == 1u);
}

TEST_CASE("cgroups: a host that delegates nothing is told apart, saying why") {
  test::TempDir fs;
  const std::string self = std::string("0::") + kService + "\n";
  const std::string mountinfo =
      "30 25 0:26 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate\n";
  put(fs / "sys/fs/cgroup" / std::filesystem::path(kService).relative_path() / "cgroup.controllers",
      "cpu io\n");
  auto host = process::CgroupHost::find(self, mountinfo, fs.path(), "crosvisor");
  REQUIRE_FALSE(host);
  CHECK_THAT(host.error().message, Catch::Contains("offers no memory, pids controller") &&
                                       Catch::Contains("Delegate=yes") &&
                                       Catch::Contains("no cgroup v1 hierarchy for memory"));
}

TEST_CASE("cgroups on this host: a child joins its cgroup before exec, is counted and killed") {
  if (::geteuid() != 0) {
    WARN("skipped: making cgroups needs root");
    return;
  }
  auto host = process::CgroupHost::of_this_process("crosvisor-test-" + std::to_string(::getpid()));
  if (!host) {
    WARN("skipped: this host gives no usable cgroup subtree: " << host.error().message);
    return;
  }
  auto vm = host->make("child", {64ull << 20, 50, 8});
  REQUIRE(vm);
  const pid_t child = sleeper_in(*vm);
  std::ifstream own("/proc/" + std::to_string(child) + "/cgroup");
  const std::string cgroups((std::istreambuf_iterator<char>(own)), {});
  CHECK_THAT(cgroups, Catch::Contains("/crosvisor-test-" + std::to_string(::getpid()) + "/child"));
  CHECK(vm->usage().pids == 1u);
  // What a crosvisord killed before it could clean up left beside: swept; the populated stays.
  for (const auto& base : host->bases())
    std::filesystem::create_directories(base.dir.parent_path() / "crosvisor-test-0" / "gone");
  CHECK(host->sweep_stale(std::chrono::seconds(0)) >= 2 * host->bases().size());
  for (const auto& base : host->bases()) {
    CHECK_FALSE(std::filesystem::exists(base.dir.parent_path() / "crosvisor-test-0"));
    CHECK(std::filesystem::exists(base.dir / "child"));
  }
  vm->kill_all();
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);
  CHECK(vm->usage().oom_kills.value_or(0) == 0);
  CHECK(vm->remove());
  for (const auto& base : host->bases()) {
    CHECK_FALSE(std::filesystem::exists(base.dir / "child"));
    ::rmdir(base.dir.c_str());
  }
}

TEST_CASE("cgroups on this host: VMMs a restarted daemon does not take over are killed, removed") {
  if (::geteuid() != 0) {
    WARN("skipped: making cgroups needs root");
    return;
  }
  auto host =
      process::CgroupHost::of_this_process("crosvisor-orphans-" + std::to_string(::getpid()));
  if (!host) {
    WARN("skipped: this host gives no usable cgroup subtree: " << host.error().message);
    return;
  }
  // A VMM the previous daemon's record keeps (taken over) and one it does not (its VM was not to
  // outlive that daemon, and its parent-death signal has not reached it yet).
  std::map<std::string, pid_t> vmms;
  for (const std::string name : {"taken-over", "orphan"}) {
    auto vm = host->make(name, {});
    REQUIRE(vm);
    vmms[name] = sleeper_in(*vm);
  }
  CHECK(host->remove_orphans({"taken-over"}, std::chrono::seconds(5)) == 1);
  int status = 0;
  REQUIRE(::waitpid(vmms["orphan"], &status, 0) == vmms["orphan"]);
  CHECK(WIFSIGNALED(status));
  CHECK(::waitpid(vmms["taken-over"], &status, WNOHANG) == 0);  // still running
  for (const auto& base : host->bases()) {
    CHECK_FALSE(std::filesystem::exists(base.dir / "orphan"));
    CHECK(std::filesystem::exists(base.dir / "taken-over"));
  }
  host->existing("taken-over").kill_all();
  REQUIRE(::waitpid(vmms["taken-over"], &status, 0) == vmms["taken-over"]);
  CHECK(host->existing("taken-over").remove());
  host->remove_bases();
}
