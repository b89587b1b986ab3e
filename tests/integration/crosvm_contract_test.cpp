// crosvm as it really is (../shared/reference/crosvm-contract.md), through the stand-in, which
// now behaves as crosvm does where the audit found the earlier stand-in hid it: it probes image
// formats and follows what they name, flocks disks, may be built without composite-disk, reboots
// to 0 on a triple fault, and may have no power button.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/exit_codes.hpp"
#include "crosvisor/messages.hpp"
#include "integration/daemon_process.hpp"
#include "integration/guest.hpp"
#include "integration/harness.hpp"
#include "support/processes.hpp"
#include "support/subprocess.hpp"
#include "support/temp_dir.hpp"

using namespace crosvisor;
using namespace std::chrono_literals;

namespace {

// The first bytes of a qcow2 image whose backing file is `backing`: what a guest can write into
// its own raw disk.
std::string qcow2_header(const std::string& backing) {
  std::string header(104, '\0');
  std::memcpy(header.data(), "QFI\xfb", 4);
  header[7] = 3;     // version 3
  header[15] = 104;  // backing file offset
  header[19] = static_cast<char>(backing.size());
  header[23] = 16;  // cluster bits
  return header + backing;
}

}  // namespace

TEST_CASE(
    "a guest that writes a qcow2 header into its raw disk cannot make crosvm open host files") {
  test::TempDir dir;
  const auto secret = dir.write("secret", "the host's, not the guest's");
  const auto record = dir / "opened.txt";
  const auto disk = dir.write("root.img", std::string(65536, '\0'));
  test::Harness h;
  // First boot: the guest writes the header, then crashes.
  VmSpec spec = test::fake_crosvm_spec("sly", "fake_crosvm.write_qcow2=" + secret.string() +
                                                  " fake_crosvm.record=" + record.string() +
                                                  " fake_crosvm.exit=33 fake_crosvm.after_ms=100");
  spec.disks.push_back(RawDisk{disk, true});
  h.create(spec);
  CHECK(h.await_state(VmState::dead).reason == DeathReason::crash);
  CHECK(h.console_has("fake-crosvm guest: wrote a qcow2 header naming " + secret.string()));
  REQUIRE(test::read_file(disk).substr(0, 4) == "QFI\xfb");
  // Started again: refused before crosvm runs, with the reason.
  h.create(spec);
  const auto dead = h.await_state(VmState::dead);
  CHECK(dead.reason == DeathReason::start_failed);
  CHECK(dead.detail == "disk 0 " + disk.string() +
                           " starts like a qcow2 image: disks are used as raw images only, and a "
                           "VMM that probes formats would follow the host paths such an image "
                           "names; refused");
  CHECK_THAT(test::read_file(record), !Catch::Contains(secret.string()));

  // The stand-in does follow such a header, as crosvm would, when nothing stops it: run it by
  // hand on the same image (named by path: it probes the disk before it looks at anything else).
  test::Subprocess raw({FAKE_CROSVM_BINARY, "--extended-status", "run", "--block",
                        disk.string() + ",lock=false", "--params",
                        "fake_crosvm.record=" + record.string(), spec.kernel.string()});
  raw.wait_exit(10s);
  CHECK_THAT(test::read_file(record), Catch::Contains("opened " + secret.string()));
}

TEST_CASE("disks that look like other formats are refused by the client and the daemon alike") {
  test::TempDir dir;
  const auto kinds = {
      std::pair{"qcow2", qcow2_header("/etc/shadow")},
      std::pair{"zstd", std::string("\x28\xb5\x2f\xfd", 4) + std::string(60, 'z')},
      std::pair{"sparse", std::string("\x3a\xff\x26\xed", 4) + std::string(60, 's')}};
  test::Harness h;
  for (const auto& [kind, bytes] : kinds) {
    INFO(kind);
    const auto image = dir.write(std::string(kind) + ".img", bytes + std::string(4096, '\0'));
    // As a partition of a composite disk, under QEMU and crosvm alike.
    for (const auto vmm : {VmmKind::qemu, VmmKind::crosvm}) {
      VmSpec spec =
          vmm == VmmKind::qemu ? test::guest_spec("fmt", "") : test::fake_crosvm_spec("fmt", "");
      spec.disks.push_back(CompositeDisk{{{"p", image, false}}});
      h.create(spec);
      const auto dead = h.await_state(VmState::dead);
      CHECK(dead.reason == DeathReason::start_failed);
      CHECK_THAT(dead.detail,
                 Catch::Contains("partition \"p\" " + image.string() + " starts like"));
    }
    // `vm run` refuses it before it asks any daemon.
    const auto file = dir.write("fmt.toml", test::fake_crosvm_toml("fmt", "") +
                                                "[[disks]]\npath = \"" + image.string() + "\"\n");
    const auto run = test::run_command(std::string(VM_BINARY) + " run " + file.string() + " 2>&1");
    CHECK(run.exit_code == kExitImage);
    CHECK_THAT(run.output, Catch::Contains("disk 0 " + image.string() + " starts like"));
  }
}

TEST_CASE("QEMU is given format=raw and never follows an image's header") {
  test::TempDir dir;
  const auto secret = dir.write("secret", std::string(65536, 's'));
  const auto disk = dir.write("root.img", qcow2_header(secret.string()) + std::string(65536, '\0'));
  const auto trace = dir / "trace";
  // The options crosvisor gives a raw disk (vmm/disk_attach.cpp), through qemu-io.
  const auto read =
      test::run_command("strace -f -e trace=open,openat -o " + trace.string() +
                        " qemu-io -r --image-opts driver=raw,file.filename=" + disk.string() +
                        " -c 'read -v 0 4' 2>&1");
  INFO(read.output);
  REQUIRE(read.exit_code == 0);
  CHECK_THAT(read.output, Catch::Contains("51 46 49 fb"));  // the header's bytes, as data
  CHECK_THAT(test::read_file(trace), Catch::Contains(disk.string()));
  CHECK_THAT(test::read_file(trace), !Catch::Contains(secret.string()));
}

TEST_CASE(
    "a crosvm built without composite-disk is refused for a composite disk, with how to "
    "build it") {
  test::TempDir dir;
  const auto plain = dir / "crosvm-nocomposite";
  std::filesystem::copy_file(FAKE_CROSVM_BINARY, plain);
  ::chmod(plain.c_str(), 0755);
  test::Harness h;
  VmSpec spec = test::fake_crosvm_spec("nocomp", "");
  spec.vmm_binary = plain;
  spec.disks.push_back(
      CompositeDisk{{{"boot", dir.write("boot.img", std::string(4096, 'b')), false}}});
  h.create(spec);
  const auto dead = h.await_state(VmState::dead);
  CHECK(dead.reason == DeathReason::start_failed);
  CHECK_THAT(dead.detail, Catch::Contains("was built without crosvm's composite-disk feature"));
  CHECK_THAT(dead.detail, Catch::Contains("cargo build --features composite-disk"));
  // A raw disk is fine with it; and the same binary with the feature takes the composite.
  VmSpec raw = test::fake_crosvm_spec("plainraw", "fake_crosvm.exit=0 fake_crosvm.after_ms=50");
  raw.vmm_binary = plain;
  raw.disks.push_back(RawDisk{dir.write("raw.img", std::string(4096, 'r')), false});
  h.create(raw);
  CHECK(h.await_state(VmState::dead).reason == DeathReason::shutdown);
  spec.vmm_binary = FAKE_CROSVM_BINARY;
  spec.name = "withcomp";
  h.create(spec);
  h.await_state(VmState::ready);
  CHECK(h.console_has("composite, 3 components"));
}

TEST_CASE(
    "disks are flocked as crosvm does: a restarted VM gets its disk, a second writer is "
    "refused before it starts") {
  test::TempDir dir;
  const auto disk = dir.write("data.img", std::string(65536, 'd'));
  test::Harness h;
  // The same VM, crashed and started again (as a fleet restarts it): its lock is its own.
  VmSpec crashing = test::fake_crosvm_spec("lockme", "fake_crosvm.exit=33 fake_crosvm.after_ms=50");
  crashing.disks.push_back(
      RawDisk{crashing.hand_over(::open(disk.c_str(), O_RDWR | O_CLOEXEC)), true});
  h.create(crashing);
  CHECK(h.await_state(VmState::dead).reason == DeathReason::crash);
  VmSpec again = crashing;
  again.params = "console=ttyS0";
  h.create(again);
  h.await_state(VmState::ready);
  CHECK(h.console_has("raw, read-write"));
  // Another VM, with its own fd of the same image: refused by crosvisor, before any crosvm.
  VmSpec second = test::fake_crosvm_spec("second", "");
  second.disks.push_back(RawDisk{disk, true});
  auto refused = h.try_create(second);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().kind == ErrorKind::conflict);
  CHECK(refused.error().message == "disk 0 " + disk.string() +
                                       " is already written by VM lockme: an image one VM writes "
                                       "must not be used by another");
  // What crosvm itself would do, shown with the stand-in run by hand on its own open of the
  // image: its flock fails.
  test::Subprocess raw(
      {FAKE_CROSVM_BINARY, "run", "--block", disk.string(), second.kernel.string()});
  CHECK(raw.wait_exit(10s) == 1);
  CHECK_THAT(raw.output(), Catch::Contains("LockFileFailure"));
}

TEST_CASE(
    "a fleet member restarted after crashes gets its writable disk each time, and another "
    "fleet cannot take it") {
  test::DaemonProcess daemon;
  auto& dir = daemon.dir;
  const auto vm = [&](const std::string& args) { return daemon.vm(args); };
  const auto disk = dir.write("data.img", std::string(65536, 'd'));
  std::string keys =
      test::fake_crosvm_toml("x", "fake_crosvm.exit=33 fake_crosvm.after_ms=100", false);
  keys = keys.substr(keys.find('\n') + 1);
  std::string steady_keys = test::fake_crosvm_toml("x", "", false);
  steady_keys = steady_keys.substr(steady_keys.find('\n') + 1);
  const std::string disk_entry =
      "[[vm.disks]]\npath = \"" + disk.string() + "\"\nwritable = true\n";
  const auto crashy = dir.write("crashy.toml", "[fleet]\nname = \"crashy\"\n[defaults]\n" + keys +
                                                   "[[vm]]\nname = \"crasher\"\n"
                                                   "restart = \"on-failure\"\nmax_restarts = 2\n"
                                                   "backoff_s = 0\n" +
                                                   disk_entry);
  const auto up = vm("fleet up " + crashy.string());
  INFO(up.output);
  const auto crasher = [&] {
    const auto status = nlohmann::json::parse(vm("fleet status crashy --json").output);
    return status.at(0).at("vms").at(0);
  };
  REQUIRE(test::eventually([&] { return crasher()["failed"] == true; }, 30s));
  // Three starts, each past crosvm's flock (a lock left behind would make the restart exit 1,
  // START_FAILED), each ended by the guest's crash.
  CHECK(crasher()["restarts"] == 2);
  CHECK(crasher()["last_death"] == "CRASH");
  CHECK_THAT(vm("logs crasher").output, !Catch::Contains("LockFileFailure"));

  // While a steady VM of another fleet writes the image, a second fleet naming it is refused
  // before anything of it starts.
  const auto steady =
      dir.write("steady.toml", "[fleet]\nname = \"steady\"\n[defaults]\n" + steady_keys +
                                   "[[vm]]\nname = \"holder\"\n" + disk_entry);
  const auto holder = vm("fleet up " + steady.string());
  INFO(holder.output);
  REQUIRE(holder.exit_code == 0);
  const auto other =
      dir.write("other.toml", "[fleet]\nname = \"other\"\n[defaults]\n" + steady_keys +
                                  "[[vm]]\nname = \"reader\"\n[[vm.disks]]\npath = \"" +
                                  disk.string() + "\"\n");
  const auto refused = vm("fleet up " + other.string());
  CHECK(refused.exit_code != 0);
  CHECK_THAT(refused.output,
             Catch::Contains("disk 0 " + disk.string() + " is already written by VM holder"));
  CHECK(test::processes_with_cmdline("--name reader").empty());
  CHECK(vm("fleet down steady").exit_code == 0);
  CHECK(vm("fleet down crashy").exit_code == 0);
}

TEST_CASE("how a crosvm guest ends: reboot=t is a stop, reboot=k a reset, a panic needs pvpanic") {
  test::Harness h;
  const std::pair<const char*, DeathReason> cases[] = {
      {"reboot=t fake_crosvm.then=reboot", DeathReason::shutdown},  // triple fault: exit 0
      {"reboot=k fake_crosvm.then=reboot", DeathReason::reboot},
      {"reboot=k fake_crosvm.then=panic", DeathReason::guest_panic},
      {"reboot=k fake_crosvm.then=panic fake_crosvm.pvpanic=absent", DeathReason::reboot},
      {"reboot=t fake_crosvm.then=panic fake_crosvm.pvpanic=absent", DeathReason::shutdown},
  };
  int index = 0;
  for (const auto& [params, reason] : cases) {
    INFO(params);
    h.create(test::fake_crosvm_spec("ends" + std::to_string(index++), params));
    CHECK(h.await_state(VmState::dead).reason == reason);
  }
}

TEST_CASE("a VMM without a power button is stopped at once, and the death says why") {
  test::Harness h;
  VmSpec spec = test::fake_crosvm_spec("arm", "fake_crosvm.powerbtn=unsupported");
  spec.stop_timeout = 60s;
  auto vm = h.create(spec);
  h.await_state(VmState::ready);
  const auto asked = std::chrono::steady_clock::now();
  h.client->send(vm, stop_atom::value);
  const auto dead = h.await_state(VmState::dead);
  CHECK(std::chrono::steady_clock::now() - asked < 30s);  // not the minute it was given
  CHECK(dead.reason == DeathReason::killed);
  CHECK_THAT(dead.detail, Catch::Contains("after the VMM refused the power button"));
  CHECK_THAT(dead.detail, Catch::Contains("stopped at once through its quit request"));
}

TEST_CASE("a kernel command line crosvm would split, or refuse, is handled before launch") {
  test::Harness h;
  // Leading '-' and an '=': crosvm would cut the token in two; crosvisor keeps it one.
  h.create(test::fake_crosvm_spec("dash", "fake_crosvm.exit=0"));
  VmSpec dash = test::fake_crosvm_spec("dash2", "");
  dash.params = "-v root=/dev/vda fake_crosvm.exit=0";
  h.create(dash);
  CHECK(h.await_state(VmState::dead).reason == DeathReason::shutdown);
  CHECK(h.await_state(VmState::dead).reason == DeathReason::shutdown);
  CHECK(h.console_has("fake-crosvm: command line:  -v root=/dev/vda fake_crosvm.exit=0"));
  // Too long or not ASCII: a clear error at the VM file, not a START_FAILED.
  test::TempDir dir;
  std::string text = test::fake_crosvm_toml("long", std::string(2100, 'x'));
  const auto result = test::run_command(std::string(VM_BINARY) + " run " +
                                        dir.write("long.toml", text).string() + " 2>&1");
  CHECK(result.exit_code == 3);
  const auto length = std::to_string(test::kFakeCrosvmParams.size() + 2100);
  CHECK_THAT(result.output, Catch::Contains("the kernel command line is " + length +
                                            " bytes; the kernel takes at most 2047"));
}
