#include <catch2/catch.hpp>

#include "config/toml_reader.hpp"
#include "config/vm_config.hpp"
#include "core/debug_policy.hpp"
#include "support/temp_dir.hpp"

using namespace crosvisor;
using crosvisor::config::load_vm_file;
using crosvisor::config::parse_vm_spec;

namespace {
const std::filesystem::path kSource = "/etc/vms/hello.toml";
}

TEST_CASE("a complete VM file is read into a spec with paths relative to the file") {
  auto spec = parse_vm_spec(R"(
name = "hello"
vmm = "qemu"
kernel = "guest/vmlinuz"
initrd = "/abs/initrd.img"
params = "console=ttyS0 quiet"
memory_mib = 512
cpus = 2
debug = "full"
accel = "tcg"
stop_timeout_s = 2.5
ready = { console = "crosvisor-guest: ready" }
)",
                            kSource);
  REQUIRE(spec.has_value());
  CHECK(spec->name == "hello");
  CHECK(spec->vmm == VmmKind::qemu);
  CHECK(spec->kernel == "/etc/vms/guest/vmlinuz");
  CHECK(spec->initrd == std::filesystem::path("/abs/initrd.img"));
  CHECK(spec->params == "console=ttyS0 quiet");
  CHECK(spec->memory_mib == 512);
  CHECK(spec->cpus == 2);
  CHECK(spec->debug == DebugLevel::full);
  CHECK(spec->accel == "tcg");
  CHECK(spec->stop_timeout == std::chrono::milliseconds(2500));
  CHECK(spec->ready == ReadyCondition{ConsoleReady{"crosvisor-guest: ready"}});
}

TEST_CASE("defaults: qemu, 256 MiB, one cpu, debug none, no ready condition, 10 s stop timeout") {
  auto spec = parse_vm_spec("name = \"a\"\nkernel = \"k\"\n", kSource);
  REQUIRE(spec.has_value());
  CHECK(spec->vmm == VmmKind::qemu);
  CHECK(spec->memory_mib == 256);
  CHECK(spec->cpus == 1);
  CHECK(spec->debug == DebugLevel::none);
  CHECK(spec->ready == ReadyCondition{ReadyWhenRunning{}});
  CHECK_FALSE(has_ready_condition(*spec));
  CHECK_FALSE(spec->initrd.has_value());
  CHECK(spec->stop_timeout == std::chrono::seconds(10));
}

TEST_CASE("a misspelt key is rejected with file, line, column, the key and a suggestion") {
  auto spec = parse_vm_spec("name = \"a\"\nkernel = \"k\"\n\nmemroy_mib = 512\n", kSource);
  REQUIRE_FALSE(spec.has_value());
  CHECK(spec.error().kind == ErrorKind::invalid_config);
  CHECK(spec.error().message ==
        "/etc/vms/hello.toml:4:1: key 'memroy_mib': unknown key; did you mean 'memory_mib'?");
}

TEST_CASE("unknown keys inside the ready table are reported with their dotted path") {
  auto spec = parse_vm_spec("name = \"a\"\nkernel = \"k\"\nready = { consol = \"x\" }\n", kSource);
  REQUIRE_FALSE(spec.has_value());
  CHECK_THAT(spec.error().message,
             Catch::Contains("key 'ready.consol': unknown key; did you mean 'console'?"));
  CHECK_THAT(spec.error().message, Catch::StartsWith("/etc/vms/hello.toml:3:"));
}

TEST_CASE("every problem of a file is reported at once, in file order") {
  auto spec = parse_vm_spec(R"(name = "bad name!"
vmm = "firecracker"
memory_mib = 4
cpus = "two"
debug = "verbose"
)",
                            kSource);
  REQUIRE_FALSE(spec.has_value());
  const std::string& message = spec.error().message;
  CHECK_THAT(message, Catch::Contains("hello.toml:1:8: key 'name': must be 1-64 letters"));
  CHECK_THAT(
      message,
      Catch::Contains(
          "hello.toml:2:7: key 'vmm': must be one of \"qemu\" \"crosvm\", found \"firecracker\""));
  CHECK_THAT(message,
             Catch::Contains(
                 "hello.toml:3:14: key 'memory_mib': must be between 16 and 1048576, found 4"));
  CHECK_THAT(message,
             Catch::Contains("hello.toml:4:8: key 'cpus': expected an integer, found a string"));
  CHECK_THAT(message,
             Catch::Contains("hello.toml:5:9: key 'debug': must be one of \"full\" \"none\""));
  CHECK_THAT(message, Catch::Contains(
                          "key 'kernel': a VM boots a kernel or a bootloader: give one of them"));
  CHECK(std::count(message.begin(), message.end(), '\n') == 5);
}

TEST_CASE("TOML syntax errors name the file, line and column") {
  auto spec = parse_vm_spec("name = \"a\"\nkernel = \n", kSource);
  REQUIRE_FALSE(spec.has_value());
  CHECK_THAT(spec.error().message, Catch::StartsWith("/etc/vms/hello.toml:2:"));
}

TEST_CASE("a ready table needs a condition and a non-empty pattern") {
  CHECK_THAT(parse_vm_spec("name = \"a\"\nkernel = \"k\"\nready = {}\n", kSource).error().message,
             Catch::Contains("key 'ready': needs a condition"));
  CHECK_THAT(parse_vm_spec("name = \"a\"\nkernel = \"k\"\nready = { console = \"\" }\n", kSource)
                 .error()
                 .message,
             Catch::Contains("key 'ready.console': must not be empty"));
}

TEST_CASE("vmm_binary: a bare name stays a PATH lookup, a path resolves against the file") {
  auto bare = parse_vm_spec("name = \"a\"\nkernel = \"k\"\nvmm_binary = \"qemu-kvm\"\n", kSource);
  REQUIRE(bare.has_value());
  CHECK(bare->vmm_binary == "qemu-kvm");
  auto relative =
      parse_vm_spec("name = \"a\"\nkernel = \"k\"\nvmm_binary = \"bin/qemu\"\n", kSource);
  REQUIRE(relative.has_value());
  CHECK(relative->vmm_binary == "/etc/vms/bin/qemu");
}

TEST_CASE("load_vm_file reads a file from disk and names a missing one") {
  test::TempDir dir;
  const auto file = dir.write("vm.toml", "name = \"disk\"\nkernel = \"vmlinuz\"\n");
  auto spec = config::load_vm_file(file);
  REQUIRE(spec.has_value());
  CHECK(spec->kernel == dir.path() / "vmlinuz");

  auto missing = config::load_vm_file(dir / "absent.toml");
  REQUIRE_FALSE(missing.has_value());
  CHECK_THAT(missing.error().message, Catch::Contains("absent.toml: No such file or directory"));
}

TEST_CASE("closest_match suggests near words only") {
  const std::vector<std::string> known{"memory_mib", "cpus", "kernel"};
  CHECK(config::closest_match("kernal", known) == "kernel");
  CHECK(config::closest_match("cpu", known) == "cpus");
  CHECK_FALSE(config::closest_match("bootloader", known).has_value());
}

TEST_CASE("disks: raw images and composite disks, paths relative to the file") {
  auto spec = parse_vm_spec(R"(name = "d"
kernel = "k"

[[disks]]
path = "root.img"
writable = true

[[disks]]
partitions = [
  { label = "boot", path = "/abs/boot.img" },
  { label = "data", path = "data.img", writable = true },
]
)",
                            kSource);
  REQUIRE(spec.has_value());
  REQUIRE(spec->disks.size() == 2);
  CHECK(std::get<RawDisk>(spec->disks[0]) == RawDisk{"/etc/vms/root.img", true});
  const auto& composite = std::get<CompositeDisk>(spec->disks[1]);
  REQUIRE(composite.partitions.size() == 2);
  CHECK(composite.partitions[0] == CompositePartition{"boot", "/abs/boot.img", false});
  CHECK(composite.partitions[1] == CompositePartition{"data", "/etc/vms/data.img", true});
}

TEST_CASE("disk mistakes are reported with their place in the disks array") {
  auto spec = parse_vm_spec(R"(name = "d"
kernel = "k"
disks = [
  { path = "a.img", partitions = [] },
  { partitions = [ { label = "x", pth = "x.img" } ] },
  { path = "b.img", writable = "yes" },
  "c.img",
  { partitions = [] },
]
)",
                            kSource);
  REQUIRE_FALSE(spec.has_value());
  const std::string& message = spec.error().message;
  CHECK_THAT(
      message,
      Catch::Contains("key 'disks[0]': a disk has either 'path' (a raw image) or 'partitions'"));
  CHECK_THAT(message, Catch::Contains(
                          "key 'disks[1].partitions[0].pth': unknown key; did you mean 'path'?"));
  CHECK_THAT(message,
             Catch::Contains("key 'disks[1].partitions[0].path': is required but missing"));
  CHECK_THAT(
      message,
      Catch::Contains(
          "hello.toml:6:32: key 'disks[2].writable': expected true or false, found a string"));
  CHECK_THAT(message, Catch::Contains("key 'disks[3]': expected a table, found a string"));
  CHECK_THAT(
      message,
      Catch::Contains("key 'disks[4].partitions': a composite disk needs at least one partition"));
}

TEST_CASE("a fixed vsock CID is read and checked against the reserved values") {
  auto spec = parse_vm_spec("name = \"c\"\nkernel = \"k\"\ncid = 4242\n", kSource);
  REQUIRE(spec.has_value());
  CHECK(spec->cid == 4242u);
  CHECK_THAT(parse_vm_spec("name = \"c\"\nkernel = \"k\"\ncid = 2\n", kSource).error().message,
             Catch::Contains("key 'cid': must be between 3 and 4294967294, found 2"));
}

TEST_CASE("ready can be a vsock callback port, but not both kinds at once") {
  auto spec =
      parse_vm_spec("name = \"v\"\nkernel = \"k\"\nready = { vsock_port = 5000 }\n", kSource);
  REQUIRE(spec.has_value());
  CHECK(spec->ready == ReadyCondition{VsockReady{5000}});
  CHECK_FALSE(std::holds_alternative<ConsoleReady>(spec->ready));
  CHECK_THAT(
      parse_vm_spec("name = \"v\"\nkernel = \"k\"\nready = { vsock_port = 5, console = \"x\" }\n",
                    kSource)
          .error()
          .message,
      Catch::Contains("key 'ready': give either 'console' or 'vsock_port', not both"));
}

TEST_CASE("a fleet file given where a VM file belongs says which command takes it") {
  auto spec =
      crosvisor::config::parse_vm_spec("[[vm]]\nname = \"a\"\nkernel = \"k\"\n", "/srv/shop.toml");
  REQUIRE_FALSE(spec.has_value());
  CHECK(spec.error().kind == crosvisor::ErrorKind::invalid_config);
  CHECK(spec.error().message ==
        "/srv/shop.toml is a fleet file ([[vm]] tables), not a VM file: use `vm fleet up "
        "/srv/shop.toml`");
}

TEST_CASE("a VM file's keys under a [vm] header are refused, saying where they belong") {
  auto spec = crosvisor::config::parse_vm_spec("# mine\n[vm]\nname = \"a\"\nkernel = \"k\"\n",
                                               "/srv/a.toml");
  REQUIRE_FALSE(spec.has_value());
  CHECK(spec.error().kind == crosvisor::ErrorKind::invalid_config);
  CHECK(spec.error().message ==
        "/srv/a.toml:2: [vm]: a VM file's keys stand at its top, under no header (a fleet file "
        "has [[vm]] tables, for `vm fleet up`)");
}

TEST_CASE("a key or table header of a hundred thousand parts is refused before parsing") {
  std::string dotted = "name = \"x\"\nkernel = \"k\"\na";
  for (int i = 0; i < 100'000; ++i)
    dotted += ".a";
  dotted += " = 1\n";
  auto spec = crosvisor::config::parse_vm_spec(dotted, "/srv/deep.toml");
  REQUIRE_FALSE(spec.has_value());
  CHECK(spec.error().message ==
        "/srv/deep.toml:3:1: a key of 100001 dotted parts; at most 32 are accepted");
  std::string header = "[t";
  for (int i = 0; i < 100'000; ++i)
    header += ".t";
  auto table = crosvisor::config::parse_vm_spec(header + "]\n", "/srv/deep.toml");
  REQUIRE_FALSE(table.has_value());
  CHECK_THAT(table.error().message, Catch::StartsWith("/srv/deep.toml:1:2: a key of 100001"));
  // Dots in strings, comments and numbers do not count.
  const auto depth = crosvisor::config::deepest_key(
      "params = \"a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.a.b.c.d.e.f.g\"\n"
      "# a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.a.b.c.d.e.f.g\n"
      "ready.console = 'x.y'\nwindow_s = 1.5\n");
  CHECK(depth.parts == 2);
}

TEST_CASE("the example VM files read, and the crosvm one reboots the way crosvm reports") {
  const std::filesystem::path examples = std::filesystem::path(CROSVISOR_SOURCE_DIR) / "examples";
  for (const auto* name : {"hello.toml", "crosvm.toml", "embedded/guest.toml"}) {
    INFO(name);
    auto spec = load_vm_file(examples / name);
    REQUIRE(spec.has_value());
  }
  const auto crosvm = load_vm_file(examples / "crosvm.toml");
  CHECK(crosvm->vmm == VmmKind::crosvm);
  // reboot=t would make a guest reboot crosvm's exit 0, SHUTDOWN (docs/vmm-backends.md).
  CHECK_THAT(crosvm->params, Catch::Contains("reboot=k") && !Catch::Contains("reboot=t"));
}

TEST_CASE("ready_timeout_s times a ready condition, and is refused without one") {
  auto spec = parse_vm_spec(
      "name = \"t\"\nkernel = \"k\"\nready = { console = \"up\" }\nready_timeout_s = 7.5\n",
      kSource);
  REQUIRE(spec.has_value());
  CHECK(spec->ready_timeout == std::chrono::milliseconds(7500));
  auto untimed = parse_vm_spec("name = \"t\"\nkernel = \"k\"\nready_timeout_s = 30\n", kSource);
  REQUIRE_FALSE(untimed.has_value());
  CHECK(untimed.error().message ==
        "/etc/vms/hello.toml:3:19: key 'ready_timeout_s': needs a ready condition to time, e.g. "
        "ready = { console = \"login:\" }");
  auto tiny = parse_vm_spec(
      "name = \"t\"\nkernel = \"k\"\nready = { console = \"up\" }\nready_timeout_s = 0\n", kSource);
  REQUIRE_FALSE(tiny.has_value());
  CHECK_THAT(tiny.error().message, Catch::Contains("key 'ready_timeout_s'"));
}

TEST_CASE("gdb_port is read for a debuggable QEMU VM, and the debug level decides in one place") {
  auto spec =
      parse_vm_spec("name = \"g\"\nkernel = \"k\"\ndebug = \"full\"\ngdb_port = 1234\n", kSource);
  REQUIRE(spec.has_value());
  CHECK(spec->gdb_port == std::optional<std::uint16_t>(1234));
  CHECK_FALSE(debug_refusal(*spec, DebugFeature::gdb));
  CHECK_FALSE(vmm_refusal(*spec, DebugFeature::gdb));
  auto low =
      parse_vm_spec("name = \"g\"\nkernel = \"k\"\ndebug = \"full\"\ngdb_port = 22\n", kSource);
  CHECK_THAT(low.error().message,
             Catch::Contains("key 'gdb_port': must be between 1024 and 65535"));

  VmSpec none;
  none.name = "quiet";
  for (auto feature :
       {DebugFeature::console_log, DebugFeature::console, DebugFeature::dump, DebugFeature::gdb}) {
    auto refused = debug_refusal(none, feature);
    REQUIRE(refused.has_value());
    CHECK(refused->kind == ErrorKind::state);
    CHECK_THAT(refused->message, Catch::StartsWith("VM 'quiet' runs with debug = \"none\": "));
  }
  none.vmm = VmmKind::crosvm;
  CHECK(vmm_refusal(none, DebugFeature::dump).has_value());
  CHECK(vmm_refusal(none, DebugFeature::gdb).has_value());
  CHECK_FALSE(vmm_refusal(none, DebugFeature::console).has_value());
}

TEST_CASE("a VM boots a kernel or a bootloader: every wrong mix is refused at its key") {
  const auto problem = [](const std::string& text) {
    auto spec = parse_vm_spec(text, kSource);
    REQUIRE_FALSE(spec.has_value());
    return spec.error().message;
  };
  CHECK(problem("name = \"b\"\nkernel = \"k\"\nbootloader = \"fw\"\n") ==
        "/etc/vms/hello.toml:3:14: key 'bootloader': a VM boots a kernel or a bootloader, not "
        "both");
  CHECK(problem("name = \"b\"\nmemory_mib = 256\n") ==
        "/etc/vms/hello.toml:1:1: key 'kernel': a VM boots a kernel or a bootloader: give one of "
        "them");
  CHECK(problem("name = \"b\"\nbootloader = \"fw\"\ninitrd = \"i\"\n") ==
        "/etc/vms/hello.toml:3:10: key 'initrd': only with a kernel: a bootloader loads its own");
  CHECK_THAT(problem("name = \"b\"\nbootloader = \"fw\"\nparams = \"quiet\"\n"),
             Catch::StartsWith("/etc/vms/hello.toml:3:10: key 'params': only with a kernel"));
  CHECK_THAT(problem("name = \"b\"\nkernel = \"k\"\nnvram_template = \"v\"\n"),
             Catch::Contains("key 'nvram_template': only with a bootloader"));
  CHECK_THAT(
      problem("name = \"b\"\nvmm = \"crosvm\"\nbootloader = \"fw\"\nnvram_template = \"v\"\n"),
      Catch::Contains("crosvm runs its bootloader with --bios and keeps no UEFI variables"));

  auto firmware = parse_vm_spec("name = \"b\"\nbootloader = \"fw/OVMF_CODE_4M.fd\"\n", kSource);
  REQUIRE(firmware.has_value());
  CHECK(firmware->bootloader == std::filesystem::path("/etc/vms/fw/OVMF_CODE_4M.fd"));
  CHECK(firmware->kernel.empty());
  CHECK_FALSE(firmware->nvram_template.has_value());  // no such sibling here
  CHECK(sibling_nvram_template("/usr/share/OVMF/OVMF_CODE_4M.fd") ==
        std::filesystem::path("/usr/share/OVMF/OVMF_VARS_4M.fd"));
  CHECK_FALSE(sibling_nvram_template("/boot/u-boot.bin").has_value());
}

TEST_CASE("a partition's GPT type is Linux data unless it says esp") {
  auto spec = parse_vm_spec(R"(
name = "p"
kernel = "k"
[[disks]]
partitions = [ { label = "esp", path = "esp.img", type = "esp" }, { label = "d", path = "d.img" } ]
)",
                            kSource);
  REQUIRE(spec.has_value());
  const auto& parts = std::get<CompositeDisk>(spec->disks[0]).partitions;
  CHECK(parts[0].type == PartitionType::esp);
  CHECK(parts[1].type == PartitionType::linux_data);
  CHECK_THAT(parse_vm_spec("name = \"p\"\nkernel = \"k\"\n[[disks]]\npartitions = [ { label = "
                           "\"x\", path = \"x\", type = \"swap\" } ]\n",
                           kSource)
                 .error()
                 .message,
             Catch::Contains("must be one of \"linux\" \"esp\", found \"swap\""));
}
