// Bootloader boot (issue 17): a real guest booted by UEFI firmware from the EFI system partition
// of a composite disk, under QEMU TCG; the crosvm stand-in booted with --bios.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <iterator>

#include "core/exit_codes.hpp"
#include "integration/daemon_process.hpp"
#include "integration/guest.hpp"
#include "process/proc_identity.hpp"
#include "support/processes.hpp"
#include "support/subprocess.hpp"
#include "support/temp_dir.hpp"

using namespace crosvisor;
using namespace std::chrono_literals;

namespace {

constexpr auto kBoot = 120s;
const std::filesystem::path kGuestDir = CROSVISOR_GUEST_DIR;
constexpr const char* kOvmfCode = "/usr/share/OVMF/OVMF_CODE_4M.fd";
constexpr const char* kOvmfVars = "/usr/share/OVMF/OVMF_VARS_4M.fd";

std::string uefi_toml(const std::string& name) {
  return "name = \"" + name + "\"\nbootloader = \"" + kOvmfCode +
         "\"\naccel = \"tcg\"\ndebug = \"full\"\nready = { console = \"" + test::kGuestReady +
         "\" }\n[[disks]]\npartitions = [ { label = \"esp\", path = \"" +
         (kGuestDir / "esp.img").string() + "\", type = \"esp\" }, { label = \"data\", path = \"" +
         (kGuestDir / "data.img").string() + "\" } ]\n";
}

// Its arguments after argv[0]. Right after exec the kernel may not have set the new command
// line yet (the VM is reported running as soon as the VMM is exec'd): waited for.
std::vector<std::string> command_line(pid_t pid) {
  std::vector<std::string> args;
  test::eventually(
      [&] {
        if (auto now = process::process_args(pid))
          args = std::move(*now);
        return !args.empty();
      },
      std::chrono::seconds(2));
  return args;
}

// The file behind the fd that QEMU's second flash drive (the variable store) names.
ino_t variable_store_inode(pid_t pid) {
  for (const auto& arg : command_line(pid)) {
    const auto at = arg.find("unit=1,file=/proc/self/fd/");
    if (at == std::string::npos)
      continue;
    const auto fd = arg.substr(at + std::string("unit=1,file=/proc/self/fd/").size());
    struct stat info {};
    REQUIRE(::stat(("/proc/" + std::to_string(pid) + "/fd/" + fd).c_str(), &info) == 0);
    return info.st_ino;
  }
  FAIL("no variable store on QEMU's command line");
  return 0;
}

}  // namespace

TEST_CASE(
    "a real guest boots from UEFI firmware alone, finds its ESP on a composite disk, sees "
    "its data partition by label, and its firmware variables survive a restart") {
  test::require_guest();
  REQUIRE(std::filesystem::exists(kGuestDir / "esp.img"));
  test::DaemonProcess daemon;
  const auto file = daemon.dir.write("uefi.toml", uefi_toml("uefi"));
  const auto store = daemon.dir / "state" / "nvram" / std::to_string(::geteuid()) / "uefi.vars.fd";
  ino_t first_store = 0;
  for (int boot = 0; boot < 2; ++boot) {
    test::Subprocess run({VM_BINARY, "run", "--console", file.string()}, daemon.env());
    auto running = run.wait_for_line("vm uefi: running: pid ", kBoot);
    REQUIRE(running.has_value());
    const pid_t qemu = std::stoi(running->substr(running->find("pid ") + 4));
    const auto args = command_line(qemu);
    CHECK(std::find(args.begin(), args.end(), "-kernel") == args.end());  // firmware alone
    CHECK(std::find(args.begin(), args.end(), "q35") != args.end());
    REQUIRE(run.wait_for_line("vm uefi: ready", kBoot));
    CHECK_THAT(run.output(), Catch::Contains("label=esp"));
    CHECK_THAT(run.output(),
               Catch::Contains("disk vda2 label=data size=2048 first=crosvisor-data"));
    const ino_t inode = variable_store_inode(qemu);
    if (boot == 0) {
      first_store = inode;
    } else {
      CHECK(inode == first_store);  // the same store, kept from the first boot
    }
    CHECK(daemon.vm("stop uefi").exit_code == 0);
    CHECK(run.wait_exit(60s) == 0);
    // The firmware wrote to the VM's own store (its boot entries), not to the template.
    REQUIRE(std::filesystem::exists(store));
    CHECK(test::read_file(store) != test::read_file(kOvmfVars));
  }
}

TEST_CASE("the crosvm stand-in gets the bootloader as --bios, an inherited fd, and no kernel") {
  test::DaemonProcess daemon;
  const auto firmware = daemon.dir.write("firmware.bin", std::string(4096, 'f'));
  const auto file = daemon.dir.write(
      "bios.toml", "name = \"bios\"\nvmm = \"crosvm\"\nbootloader = \"" + firmware.string() +
                       "\"\ndebug = \"full\"\nready = { console = \"" + test::kFakeGuestReady +
                       "\" }\n");
  test::Subprocess run({VM_BINARY, "run", file.string()}, daemon.env());
  auto running = run.wait_for_line("vm bios: running: pid ", 60s);
  REQUIRE(running.has_value());
  const pid_t crosvm = std::stoi(running->substr(running->find("pid ") + 4));
  const auto args = command_line(crosvm);
  const auto bios = std::find(args.begin(), args.end(), "--bios");
  REQUIRE(bios != args.end());
  REQUIRE(bios + 1 != args.end());
  CHECK_THAT(*(bios + 1), Catch::StartsWith("/proc/self/fd/"));
  CHECK(args.back().rfind("--", 0) != 0);  // the last argument is an option's value, not a kernel
  CHECK(std::find(args.begin(), args.end(), "--initrd") == args.end());
  // The stand-in checked every fd it was given (a leak or a bad one fails its start).
  REQUIRE(run.wait_for_line("vm bios: ready", 60s));
  CHECK(daemon.vm("stop bios").exit_code == 0);
  CHECK(run.wait_exit(30s) == 0);
}

TEST_CASE("a VM file with both a kernel and a bootloader, or neither, is refused at load") {
  test::DaemonProcess daemon;
  const auto both = daemon.dir.write("both.toml", "name = \"both\"\nkernel = \"" +
                                                      (kGuestDir / "vmlinuz").string() +
                                                      "\"\nbootloader = \"" + kOvmfCode + "\"\n");
  const auto refused = daemon.vm("run " + both.string());
  CHECK(refused.exit_code == kExitConfig);
  CHECK(refused.output == "vm: " + both.string() +
                              ":3:14: key 'bootloader': a VM boots a kernel or a bootloader, "
                              "not both\n");
  const auto neither = daemon.dir.write("neither.toml", "name = \"neither\"\n");
  const auto none = daemon.vm("run " + neither.string());
  CHECK(none.exit_code == kExitConfig);
  CHECK_THAT(none.output, Catch::Contains(":1:1: key 'kernel': a VM boots a kernel or a "
                                          "bootloader: give one of them"));
}
