// A VMM's confinement: the root's plan against a host laid out by a test double, then a real
// confined child (root only) that reports what it sees from inside.
#include "process/sandbox.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <map>

#include "process/launch.hpp"
#include "support/temp_dir.hpp"

using namespace crosvisor;
using process::HostEntry;
using process::RootStep;
using Kind = RootStep::Kind;

namespace {

// TEST DOUBLE: a host of Debian's merged /usr, known by path.
HostEntry fake_host(const std::filesystem::path& path) {
  static const std::map<std::string, HostEntry> host{
      {"/usr", {HostEntry::Type::directory, {}}},
      {"/lib", {HostEntry::Type::symlink, "usr/lib"}},
      {"/lib64", {HostEntry::Type::symlink, "usr/lib64"}},
      {"/bin", {HostEntry::Type::symlink, "usr/bin"}},
      {"/etc/ld.so.cache", {HostEntry::Type::file, {}}},
      {"/dev/null", {HostEntry::Type::device, {}}},
      {"/dev/urandom", {HostEntry::Type::device, {}}},
      {"/run/crosvisor/vm-a", {HostEntry::Type::directory, {}}},
      {"/tmp/t/run/vm-b", {HostEntry::Type::directory, {}}},
  };
  const auto found = host.find(path.string());
  return found == host.end() ? HostEntry{} : found->second;
}

// A VMM's sandbox as crosvisord makes one, rooted at `mount_point`: nobody's ids, the default
// read-only and device mounts.
process::Sandbox nobody_sandbox(const std::filesystem::path& mount_point) {
  process::Sandbox sandbox;
  sandbox.uid = 65534;
  sandbox.gid = 65534;
  sandbox.mount_point = mount_point;
  sandbox.read_only = process::default_read_only();
  sandbox.devices = process::default_devices();
  return sandbox;
}

std::string describe(const std::vector<RootStep>& steps) {
  std::string all;
  for (const auto& step : steps) {
    all += std::to_string(static_cast<int>(step.kind)) + " " + step.source + " -> " + step.target +
           "\n";
  }
  return all;
}

// Reads all of `fd` until end-of-file.
std::string read_all(int fd) {
  std::string all;
  char buffer[4096];
  ssize_t n;
  while ((n = ::read(fd, buffer, sizeof(buffer))) > 0)
    all.append(buffer, static_cast<std::size_t>(n));
  return all;
}

}  // namespace

TEST_CASE("sandbox root: only what is shown, parents once, host links kept as links") {
  process::Sandbox sandbox;
  sandbox.mount_point = "/mnt/root";
  sandbox.read_only = {"/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc/ld.so.cache", "/usr"};
  sandbox.devices = {"/dev/null", "/dev/urandom", "/dev/kvm"};
  sandbox.writable = {"/run/crosvisor/vm-a", "/tmp/t/run/vm-b"};
  const auto steps = process::plan_root(sandbox, fake_host);
  INFO(describe(steps));
  const std::vector<RootStep> expected{
      {Kind::mount_root, "", ""},
      {Kind::make_dir, "", "/tmp"},
      {Kind::mount_tmp, "", "/tmp"},
      {Kind::make_dir, "", "/proc"},
      {Kind::mount_proc, "", "/proc"},
      {Kind::make_dir, "", "/usr"},
      {Kind::bind_read_only, "/usr", "/usr"},
      {Kind::symlink, "usr/lib", "/lib"},
      {Kind::symlink, "usr/lib64", "/lib64"},
      {Kind::symlink, "usr/bin", "/bin"},
      // /sbin is missing on this host: skipped; /usr is shown once.
      {Kind::make_dir, "", "/etc"},
      {Kind::make_file, "", "/etc/ld.so.cache"},
      {Kind::bind_read_only, "/etc/ld.so.cache", "/etc/ld.so.cache"},
      {Kind::make_dir, "", "/dev"},
      {Kind::make_file, "", "/dev/null"},
      {Kind::bind_device, "/dev/null", "/dev/null"},
      {Kind::make_file, "", "/dev/urandom"},
      {Kind::bind_device, "/dev/urandom", "/dev/urandom"},
      // No /dev/kvm here.
      {Kind::make_dir, "", "/run"},
      {Kind::make_dir, "", "/run/crosvisor"},
      {Kind::make_dir, "", "/run/crosvisor/vm-a"},
      {Kind::bind_writable, "/run/crosvisor/vm-a", "/run/crosvisor/vm-a"},
      // Under /tmp: made in the sandbox's own /tmp.
      {Kind::make_dir, "", "/tmp/t"},
      {Kind::make_dir, "", "/tmp/t/run"},
      {Kind::make_dir, "", "/tmp/t/run/vm-b"},
      {Kind::bind_writable, "/tmp/t/run/vm-b", "/tmp/t/run/vm-b"},
  };
  REQUIRE(steps.size() == expected.size());
  for (std::size_t i = 0; i < steps.size(); ++i) {
    INFO("step " << i);
    CHECK(steps[i].kind == expected[i].kind);
    CHECK(steps[i].source == expected[i].source);
    CHECK(steps[i].target == expected[i].target);
  }
}

TEST_CASE("a confined child: nobody's ids, no capabilities, its own namespaces and root") {
  if (::geteuid() != 0) {
    WARN("skipped: confining a child needs root");
    return;
  }
  test::TempDir dir;
  const auto mount_point = dir.path() / "root";
  const auto run_dir = dir.path() / "run";
  std::filesystem::create_directories(mount_point);
  std::filesystem::create_directories(run_dir);
  REQUIRE(::chown(run_dir.c_str(), 65534, 65534) == 0);
  dir.write("secret", "host only");

  int out[2];
  REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
  UniqueFd read_end(out[0]);
  process::LaunchRequest request;
  request.binary = "/bin/sh";
  request.args = {"-c",
                  "read go; echo pid=$$; id -u; id -g; grep -E '^(CapEff|CapBnd|NoNewPrivs)' "
                  "/proc/self/status; hostname; ls /; echo made > " +
                      (run_dir / "made").string() + " && echo wrote; cat " +
                      (dir.path() / "secret").string() + " 2>&1; touch /usr/x 2>&1; echo end"};
  int in[2];
  REQUIRE(::pipe2(in, O_CLOEXEC) == 0);
  UniqueFd go(in[1]);
  request.fds.set(0, UniqueFd(in[0]));
  request.fds.set(1, UniqueFd(out[1]));
  request.fds.set(2, UniqueFd(::dup(1)));
  process::Sandbox sandbox = nobody_sandbox(mount_point);
  sandbox.writable = {run_dir};
  request.sandbox = sandbox;
  auto child = process::spawn_child(request);
  REQUIRE(child);
  request.fds = {};  // our copy of the write end goes
  // It waits for a line on its stdin meanwhile.
  for (const char* kind : {"mnt", "pid", "ipc", "uts"}) {
    INFO(kind);
    CHECK(std::filesystem::read_symlink("/proc/" + std::to_string(child->pid) + "/ns/" + kind) !=
          std::filesystem::read_symlink(std::string("/proc/self/ns/") + kind));
  }
  REQUIRE(::write(go.get(), "go\n", 3) == 3);
  go.reset();
  const std::string said = read_all(read_end.get());
  int status = 0;
  ::waitpid(child->pid, &status, 0);
  INFO(said);
  CHECK(WIFEXITED(status));
  CHECK_THAT(said, Catch::StartsWith("pid=1\n65534\n65534\n"));
  CHECK_THAT(said, Catch::Contains("CapEff:\t0000000000000000"));
  CHECK_THAT(said, Catch::Contains("CapBnd:\t0000000000000000"));
  CHECK_THAT(said, Catch::Contains("NoNewPrivs:\t1"));
  CHECK_THAT(said, Catch::Contains("crosvisor-vmm"));
  CHECK_THAT(said, Catch::Contains("wrote"));
  CHECK_THAT(said, Catch::Contains("No such file or directory"));  // the host's file
  CHECK_THAT(said, Catch::Contains("Read-only file system"));      // /usr
  CHECK_THAT(said, !Catch::Contains("home"));
  CHECK_THAT(said, !Catch::Contains("root\n"));
  CHECK_THAT(said, Catch::EndsWith("end\n"));
  CHECK(std::filesystem::exists(run_dir / "made"));
  // Nothing of its root is left on the host: the mount point is as empty as before.
  CHECK(std::filesystem::is_empty(mount_point));
}

TEST_CASE("a confined child is made while its supervisor holds more fds than the child may") {
  if (::geteuid() != 0) {
    WARN("skipped: confining a child needs root");
    return;
  }
  // A supervisor of a thousand VMs holds thousands of fds; the VMM's limit is lower, and its
  // root is made (files opened) before exec closes the supervisor's.
  std::vector<UniqueFd> held;
  for (int i = 0; i < 600; ++i)
    held.emplace_back(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  REQUIRE(held.back());
  test::TempDir dir;
  const auto mount_point = dir.path() / "root";
  std::filesystem::create_directories(mount_point);
  process::LaunchRequest request;
  request.binary = "/bin/true";
  request.max_open_files = 256;
  request.fds.set(0, UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC)));
  request.fds.set(1, UniqueFd(::open("/dev/null", O_WRONLY | O_CLOEXEC)));
  request.fds.set(2, UniqueFd(::open("/dev/null", O_WRONLY | O_CLOEXEC)));
  request.sandbox = nobody_sandbox(mount_point);
  auto child = process::spawn_child(request);
  REQUIRE(child);
  int status = 0;
  ::waitpid(child->pid, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
