#include "supervisor/qemu_backend.hpp"

#include <catch2/catch.hpp>

#include "support/temp_dir.hpp"

using namespace crosvisor;

namespace {
bool has_pair(const std::vector<std::string>& args, const std::string& a, const std::string& b) {
  for (std::size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == a && args[i + 1] == b)
      return true;
  }
  return false;
}
std::vector<int> targets(const FdPlan& plan) {
  std::vector<int> numbers;
  for (const auto& entry : plan.entries())
    numbers.push_back(entry.target);
  std::sort(numbers.begin(), numbers.end());
  return numbers;
}
}  // namespace

TEST_CASE("QEMU argv names every input as an inherited fd and plans exactly those fds") {
  test::TempDir dir;
  VmSpec spec;
  spec.name = "argv";
  spec.kernel = dir.write("vmlinuz", "kernel");
  spec.initrd = dir.write("initrd", "initrd");
  spec.params = "console=ttyS0";
  spec.memory_mib = 300;
  spec.cpus = 2;
  spec.accel = "kvm:tcg";  // may use KVM: no TSC hint
  auto launch = qemu::prepare(spec, dir.path());
  REQUIRE(launch.has_value());
  const auto& args = launch->request.args;
  CHECK(launch->request.binary == "qemu-system-x86_64");
  CHECK(has_pair(args, "-M", "microvm"));
  CHECK(has_pair(args, "-m", "300"));
  CHECK(has_pair(args, "-smp", "2"));
  CHECK(has_pair(args, "-accel", "kvm"));
  CHECK(has_pair(args, "-accel", "tcg"));
  CHECK(has_pair(args, "-kernel", "/proc/self/fd/3"));
  CHECK(has_pair(args, "-initrd", "/proc/self/fd/4"));
  CHECK(has_pair(args, "-append", "console=ttyS0"));
  CHECK(has_pair(args, "-chardev", "file,id=console,path=/proc/self/fd/5"));
  CHECK(has_pair(args, "-chardev", "socket,id=qmp,fd=6,server=on,wait=off"));
  CHECK(targets(launch->request.fds) == std::vector<int>{0, 1, 2, 3, 4, 5, 6});
  CHECK(launch->control_socket == dir.path() / "qmp.sock");
  CHECK(std::filesystem::is_socket(launch->control_socket));
  CHECK(launch->console.valid());
  CHECK(launch->vmm_output.valid());
}

TEST_CASE("without initrd or params, their options are left out") {
  test::TempDir dir;
  VmSpec spec;
  spec.name = "bare";
  spec.kernel = dir.write("vmlinuz", "kernel");
  auto launch = qemu::prepare(spec, dir.path());
  REQUIRE(launch.has_value());
  const auto& args = launch->request.args;
  CHECK(std::find(args.begin(), args.end(), "-initrd") == args.end());
  CHECK(std::find(args.begin(), args.end(), "-append") == args.end());
}

TEST_CASE("an unusable kernel or initrd fails the preparation, naming the file") {
  test::TempDir dir;
  VmSpec spec;
  spec.name = "broken";
  spec.kernel = dir / "no-such-kernel";
  auto missing = qemu::prepare(spec, dir.path());
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().message ==
        "kernel " + (dir / "no-such-kernel").string() + ": No such file or directory");

  spec.kernel = dir.write("empty", "");
  CHECK_THAT(qemu::prepare(spec, dir.path()).error().message,
             Catch::EndsWith("empty: file is empty"));

  spec.kernel = dir.path();
  CHECK_THAT(qemu::prepare(spec, dir.path()).error().message,
             Catch::EndsWith(": not a regular file"));

  spec.kernel = dir.write("vmlinuz", "kernel");
  spec.initrd = dir / "no-initrd";
  CHECK_THAT(qemu::prepare(spec, dir.path()).error().message, Catch::StartsWith("initrd "));
}

TEST_CASE("accel lists turn into one -accel per entry") {
  CHECK(qemu::accel_args("tcg") == std::vector<std::string>{"-accel", "tcg"});
  CHECK(qemu::accel_args("kvm:tcg") == std::vector<std::string>{"-accel", "kvm", "-accel", "tcg"});
}

TEST_CASE("under TCG alone the guest is told the host's TSC rate, once") {
  VmSpec spec;
  spec.params = "console=ttyS0";
  spec.accel = "tcg";
  CHECK(qemu::kernel_params(spec, 2596146) == "console=ttyS0 tsc_early_khz=2596146");
  CHECK(qemu::kernel_params(spec, std::nullopt) == "console=ttyS0");
  spec.params = "";
  CHECK(qemu::kernel_params(spec, 1000) == "tsc_early_khz=1000");
  spec.params = "tsc_early_khz=5 quiet";
  CHECK(qemu::kernel_params(spec, 1000) == "tsc_early_khz=5 quiet");
  spec.params = "quiet";
  spec.accel = "kvm:tcg";
  CHECK(qemu::kernel_params(spec, 1000) == "quiet");
  spec.accel = "kvm";
  CHECK(qemu::kernel_params(spec, 1000) == "quiet");
  CHECK(qemu::host_tsc_khz().value_or(0) > 100'000);  // this machine has /proc/cpuinfo
}
