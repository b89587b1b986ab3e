// The `vm` command as a user runs it: real processes, real signals, real guests.
#include <signal.h>

#include <catch2/catch.hpp>

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

// The pid from "vm NAME: running: pid N, cid C".
pid_t qemu_pid(test::Subprocess& vm) {
  auto line = vm.wait_for_line(": running: pid ", kBoot);
  REQUIRE(line.has_value());
  return std::stoi(line->substr(line->find("pid ") + 4));
}

}  // namespace

TEST_CASE("vm run boots the VM, streams its console, reports SHUTDOWN and exits 0") {
  test::require_guest();
  test::OnDemandSocket own;  // no crosvisord runs there: `vm run` starts one
  const auto file =
      own.dir.write("hello.toml", test::guest_toml("hello", "cv.then=poweroff cv.delay=0.3"));
  test::Subprocess vm({VM_BINARY, "run", "--console", file.string()}, own.env());
  CHECK(vm.wait_for_line("vm: started crosvisord at " + own.socket.string(), kBoot));
  CHECK(vm.wait_for_line("vm hello: starting", kBoot));
  const pid_t pid = qemu_pid(vm);
  CHECK(vm.wait_for_line(test::kGuestReady, kBoot));  // the console, on stdout
  CHECK(vm.wait_for_line("vm hello: ready", kBoot));
  CHECK(vm.wait_for_line("vm hello: dead (SHUTDOWN): exit 0", kBoot));
  CHECK(vm.wait_exit(30s) == 0);
  CHECK_FALSE(test::process_alive(pid));
  // The daemon it started outlives it, then leaves once it has nothing to supervise.
  CHECK(test::eventually([&] { return own.daemons().empty(); }, 30s));
}

TEST_CASE("vm run stopped with SIGINT stops the VM and leaves no QEMU process") {
  test::require_guest();
  test::OnDemandSocket own;
  const auto file = own.dir.write("ctrlc.toml", test::guest_toml("ctrlc", ""));
  test::Subprocess vm({VM_BINARY, "run", file.string()}, own.env());
  const pid_t pid = qemu_pid(vm);
  REQUIRE(vm.wait_for_line("vm ctrlc: ready", kBoot));
  vm.signal(SIGINT);
  CHECK(vm.wait_for_line(
      "vm ctrlc: asking the guest to power off; it has 10 s before its VMM is made to stop (press "
      "Ctrl-C again to kill it now)",
      10s));
  CHECK(vm.wait_for_line("vm ctrlc: dead (SHUTDOWN)", 30s));
  CHECK(vm.wait_exit(30s) == 128 + SIGINT);
  CHECK_FALSE(test::process_alive(pid));
  CHECK(test::processes_with_cmdline("-name ctrlc ").empty());
}

TEST_CASE("vm run killed with SIGKILL: its session ends, and with it the VM") {
  test::require_guest();
  test::OnDemandSocket own;
  const auto file = own.dir.write("orphan.toml", test::guest_toml("orphan", ""));
  test::Subprocess vm({VM_BINARY, "run", file.string()}, own.env());
  const pid_t pid = qemu_pid(vm);
  REQUIRE(vm.wait_for_line("vm orphan: ready", kBoot));
  vm.signal(SIGKILL);
  CHECK(vm.wait_exit(10s) == 128 + SIGKILL);
  // AVF's rule: a VM lives as long as its client. The daemon powers it off.
  CHECK(test::eventually([&] { return !test::process_alive(pid); }, 30s));
  CHECK(test::eventually([&] { return own.daemons().empty(); }, 30s));
}

TEST_CASE("vm run with a kernel that does not exist fails at once, naming it") {
  test::TempDir dir;
  const auto file =
      dir.write("nokernel.toml", "name = \"nokernel\"\nkernel = \"missing/vmlinuz\"\n");
  test::OnDemandSocket own;
  test::Subprocess vm({VM_BINARY, "run", file.string()}, own.env());
  // The client opens the VM's files itself (the supervisor only gets fds): it fails first, with
  // the exit code of a file that is not there.
  CHECK(vm.wait_exit(30s) == kExitNotFound);
  CHECK_THAT(vm.output(), Catch::Contains("vm: kernel " + (dir / "missing/vmlinuz").string() +
                                          ": No such file or directory"));
  CHECK_THAT(vm.output(), !Catch::Contains("running"));
  CHECK(own.daemons().empty());  // nothing was started for it
}

TEST_CASE("vm run rejects a misspelt key with the file, line and key") {
  test::TempDir dir;
  const auto file = dir.write("typo.toml", "name = \"typo\"\nkernel = \"k\"\ncpu = 2\n");
  test::OnDemandSocket own;
  test::Subprocess vm({VM_BINARY, "run", file.string()}, own.env());
  CHECK(vm.wait_exit(30s) == 3);
  CHECK_THAT(vm.output(),
             Catch::Contains(file.string() + ":3:1: key 'cpu': unknown key; did you mean 'cpus'?"));
}

TEST_CASE("vm composite writes a crosvm composite disk and its companions, and inspects it") {
  test::TempDir dir;
  dir.write("boot.img", std::string(4000, 'b'));
  dir.write("data.img", std::string(8192, 'd'));
  const auto out = dir / "disk.img";
  test::Subprocess create({VM_BINARY, "composite", out.string(), "--partition",
                           "boot:" + (dir / "boot.img").string(), "--partition",
                           "data:" + (dir / "data.img").string() + ":writable"});
  REQUIRE(create.wait_exit(30s) == 0);
  for (const auto* suffix :
       {"", ".header", ".footer", ".filler", ".vmdk", ".base.vmdk", ".ro1.vmdk", ".ro2.vmdk"}) {
    CHECK(std::filesystem::exists(out.string() + suffix));
  }
  test::Subprocess inspect({VM_BINARY, "composite", "--inspect", out.string()});
  REQUIRE(inspect.wait_exit(30s) == 0);
  CHECK_THAT(inspect.output(),
             Catch::Contains("composite disk, version 2, 53248 bytes, 5 components"));
  CHECK_THAT(inspect.output(),
             Catch::Contains("0x5fa0      0x60        ro      " + out.string() + ".filler"));
  CHECK_THAT(inspect.output(), Catch::Contains("2: \"data\" LBA 48-63 (8192 bytes)"));

  // Named where a raw image belongs, it is recognised, and the user is told what to write.
  const auto misuse = dir.write("misuse.toml",
                                "name = \"misuse\"\nkernel = \"boot.img\"\n"
                                "[[disks]]\npath = \"disk.img\"\n");
  test::Subprocess run({VM_BINARY, "run", misuse.string()});
  CHECK(run.wait_exit(30s) == 3);
  CHECK_THAT(run.output(), Catch::Contains(misuse.string() + ":4:8: key 'disks[0].path': " +
                                           out.string() + " is a composite disk description"));
  CHECK_THAT(run.output(), Catch::Contains("partitions = [ { label = \"boot\", path = \"" +
                                           (dir / "boot.img").string() + "\" }"));
  CHECK_THAT(run.output(), Catch::Contains("{ label = \"data\", path = \"" +
                                           (dir / "data.img").string() + "\", writable = true }"));

  test::Subprocess garbage({VM_BINARY, "composite", "--inspect", (dir / "boot.img").string()});
  CHECK(garbage.wait_exit(30s) == kExitImage);
  CHECK_THAT(garbage.output(), Catch::Contains("not a composite disk: bad magic"));

  test::Subprocess unaligned({VM_BINARY, "composite", (dir / "bad.img").string(), "--partition",
                              "boot:" + (dir / "boot.img").string() + ":writable"});
  CHECK(unaligned.wait_exit(30s) == kExitImage);
  CHECK_THAT(unaligned.output(), Catch::Contains("writable partition \"boot\" is 4000 bytes"));
  CHECK_FALSE(std::filesystem::exists(dir / "bad.img"));
  CHECK_FALSE(std::filesystem::exists(dir / "bad.img.header"));
}
