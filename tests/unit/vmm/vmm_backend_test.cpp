#include <fcntl.h>
#include <grp.h>
#include <linux/kcmp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "disk/composite.hpp"
#include "support/temp_dir.hpp"
#include "vmm/crosvm/crosvm_backend.hpp"
#include "vmm/disk_attach.hpp"
#include "vmm/qemu/qemu_backend.hpp"

using namespace crosvisor;

namespace {
bool has_pair(const std::vector<std::string>& args, const std::string& a, const std::string& b) {
  for (std::size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == a && args[i + 1] == b)
      return true;
  }
  return false;
}
std::vector<int> targets(const process::FdPlan& plan) {
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
  auto launch = vmm::qemu::prepare(spec, vmm::LaunchContext{dir.path(), 0, {}});
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
  CHECK(launch->control.protocol == vmm::ControlProtocol::qmp);
  CHECK(launch->control.socket == dir.path() / "qmp.sock");
  CHECK(std::filesystem::is_socket(launch->control.socket));
  // A guest panic and a guest reset end QEMU, each telling why over QMP.
  CHECK(has_pair(args, "-device", "pvpanic"));
  CHECK(has_pair(args, "-action", "panic=exit-failure"));
  CHECK(std::find(args.begin(), args.end(), "-no-reboot") != args.end());
  CHECK(launch->console.valid());
  CHECK(launch->vmm_output.valid());
}

TEST_CASE("without initrd or params, their options are left out") {
  test::TempDir dir;
  VmSpec spec;
  spec.name = "bare";
  spec.kernel = dir.write("vmlinuz", "kernel");
  auto launch = vmm::qemu::prepare(spec, vmm::LaunchContext{dir.path(), 0, {}});
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
  auto missing = vmm::qemu::prepare(spec, vmm::LaunchContext{dir.path(), 0, {}});
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().message ==
        "kernel " + (dir / "no-such-kernel").string() + ": No such file or directory");

  spec.kernel = dir.write("empty", "");
  CHECK_THAT(vmm::qemu::prepare(spec, vmm::LaunchContext{dir.path(), 0, {}}).error().message,
             Catch::EndsWith("empty: file is empty"));

  spec.kernel = dir.path();
  CHECK_THAT(vmm::qemu::prepare(spec, vmm::LaunchContext{dir.path(), 0, {}}).error().message,
             Catch::EndsWith(": not a regular file"));

  spec.kernel = dir.write("vmlinuz", "kernel");
  spec.initrd = dir / "no-initrd";
  CHECK_THAT(vmm::qemu::prepare(spec, vmm::LaunchContext{dir.path(), 0, {}}).error().message,
             Catch::StartsWith("initrd "));
}

TEST_CASE("accel lists turn into one -accel per entry") {
  CHECK(vmm::qemu::accel_args("tcg") == std::vector<std::string>{"-accel", "tcg"});
  CHECK(vmm::qemu::accel_args("kvm:tcg") ==
        std::vector<std::string>{"-accel", "kvm", "-accel", "tcg"});
}

TEST_CASE("under TCG alone the guest is told the host's TSC rate, once") {
  VmSpec spec;
  spec.params = "console=ttyS0";
  spec.accel = "tcg";
  CHECK(vmm::qemu::kernel_params(spec, 2596146) == "console=ttyS0 tsc_early_khz=2596146");
  CHECK(vmm::qemu::kernel_params(spec, std::nullopt) == "console=ttyS0");
  spec.params = "";
  CHECK(vmm::qemu::kernel_params(spec, 1000) == "tsc_early_khz=1000");
  spec.params = "tsc_early_khz=5 quiet";
  CHECK(vmm::qemu::kernel_params(spec, 1000) == "tsc_early_khz=5 quiet");
  spec.params = "quiet";
  spec.accel = "kvm:tcg";
  CHECK(vmm::qemu::kernel_params(spec, 1000) == "quiet");
  spec.accel = "kvm";
  CHECK(vmm::qemu::kernel_params(spec, 1000) == "quiet");
  CHECK(vmm::qemu::host_tsc_khz().value_or(0) > 100'000);  // this machine has /proc/cpuinfo
}

TEST_CASE("crosvm argv: global flags, every input an inherited fd, a listening seqpacket socket") {
  test::TempDir dir;
  VmSpec spec;
  spec.name = "cv";
  spec.vmm = VmmKind::crosvm;
  spec.kernel = dir.write("vmlinuz", "kernel");
  spec.initrd = dir.write("initrd", "initrd");
  spec.params = "console=ttyS0 quiet";
  spec.memory_mib = 512;
  spec.cpus = 2;
  spec.disks.push_back(RawDisk{dir.write("data.img", std::string(4096, 'd')), true});
  spec.disks.push_back(RawDisk{dir.write("ro.img", std::string(4096, 'r')), false});
  auto launch = vmm::crosvm::prepare(spec, vmm::LaunchContext{dir.path(), 2077, {}});
  REQUIRE(launch.has_value());
  const auto& args = launch->request.args;
  CHECK(launch->request.binary == "crosvm");
  REQUIRE(args.size() > 4);
  CHECK(std::vector<std::string>(args.begin(), args.begin() + 4) ==
        std::vector<std::string>{"--extended-status", "--no-syslog", "run", "--disable-sandbox"});
  CHECK(has_pair(args, "--mem", "512"));
  CHECK(has_pair(args, "--cpus", "2"));
  CHECK(has_pair(args, "--initrd", "/proc/self/fd/4"));
  CHECK(has_pair(args, "--params", "console=ttyS0 quiet"));
  CHECK(has_pair(args, "--vsock", "cid=2077"));
  CHECK(has_pair(args, "--block", "/proc/self/fd/5"));
  CHECK(has_pair(args, "--block", "/proc/self/fd/6,ro=true"));
  CHECK(has_pair(args, "--serial", "type=file,path=/proc/self/fd/7,hardware=serial,num=1,console"));
  CHECK(has_pair(args, "--socket", "/proc/self/fd/8"));
  CHECK(args.back() == "/proc/self/fd/3");  // the kernel, positional and last
  CHECK(targets(launch->request.fds) == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8});
  CHECK(launch->control.protocol == vmm::ControlProtocol::crosvm);
  CHECK(std::filesystem::is_socket(launch->control.socket));
  for (const auto& entry : launch->request.fds.entries()) {
    if (entry.target != 8)
      continue;
    int type = 0;
    int accepting = 0;
    socklen_t size = sizeof(int);
    REQUIRE(getsockopt(entry.source.get(), SOL_SOCKET, SO_TYPE, &type, &size) == 0);
    REQUIRE(getsockopt(entry.source.get(), SOL_SOCKET, SO_ACCEPTCONN, &accepting, &size) == 0);
    CHECK(type == SOCK_SEQPACKET);
    CHECK(accepting == 1);
  }
}

TEST_CASE("crosvm gets a composite disk as one composite file naming each part by fd") {
  test::TempDir dir;
  VmSpec spec;
  spec.name = "cvc";
  spec.vmm = VmmKind::crosvm;
  spec.kernel = dir.write("vmlinuz", "kernel");
  spec.disks.push_back(
      CompositeDisk{{{"boot", dir.write("boot.img", std::string(4096, 'b')), false},
                     {"data", dir.write("data.img", std::string(8192, 'd')), true}}});
  auto launch = vmm::crosvm::prepare(spec, vmm::LaunchContext{dir.path(), 0, {}});
  REQUIRE(launch.has_value());
  const auto& args = launch->request.args;
  CHECK(std::find(args.begin(), args.end(), "--vsock") == args.end());  // no CID, no device
  auto block = std::find(args.begin(), args.end(), "--block");
  REQUIRE(block != args.end());
  REQUIRE(block + 1 != args.end());
  CHECK(block[1].rfind("/proc/self/fd/", 0) == 0);
  CHECK(block[1].find("ro=true") == std::string::npos);  // a writable partition: read-write
  std::ifstream in(dir / "disk0.composite", std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto composite = disk::decode_composite(bytes);
  REQUIRE(composite.has_value());
  // header, boot, data, footer (boot is 4096 bytes: aligned, so no filler).
  std::vector<int> planned = targets(launch->request.fds);
  for (const auto& part : composite->components) {
    REQUIRE(part.path.rfind("/proc/self/fd/", 0) == 0);
    const int number = std::stoi(part.path.substr(std::string("/proc/self/fd/").size()));
    CHECK(std::find(planned.begin(), planned.end(), number) != planned.end());
  }
}

namespace {
// Whether two fds share one open file description (and with it any flock on it).
bool same_description(int a, int b) {
  return ::syscall(SYS_kcmp, ::getpid(), ::getpid(), KCMP_FILE, a, b) == 0;
}
}  // namespace

TEST_CASE("crosvm locks an open of a handed disk of its own, so the lock ends with the VMM") {
  test::TempDir dir;
  const auto image = dir.write("data.img", std::string(4096, 'd'));
  const int handed = ::open(image.c_str(), O_RDWR | O_CLOEXEC);
  REQUIRE(handed >= 0);
  const std::filesystem::path named = "/proc/self/fd/" + std::to_string(handed);
  process::FdPlan fds;
  auto args = vmm::crosvm_disk_args(RawDisk{named, true}, 0, dir.path(), fds);
  REQUIRE(args.has_value());
  CHECK(*args == std::vector<std::string>{"--block", "/proc/self/fd/3"});  // crosvm's lock=true
  REQUIRE(fds.entries().size() == 1);
  CHECK_FALSE(same_description(fds.entries()[0].source.get(), handed));
  CHECK((::fcntl(fds.entries()[0].source.get(), F_GETFL) & O_ACCMODE) == O_RDWR);

  // A read-only handed fd is opened read-only again, never more.
  const int read_only = ::open(image.c_str(), O_RDONLY | O_CLOEXEC);
  process::FdPlan ro_fds;
  REQUIRE(vmm::crosvm_disk_args(RawDisk{"/proc/self/fd/" + std::to_string(read_only), false}, 0,
                                dir.path(), ro_fds));
  CHECK((::fcntl(ro_fds.entries()[0].source.get(), F_GETFL) & O_ACCMODE) == O_RDONLY);
  ::close(read_only);

  // A supervisor that may not open the file itself (here: running as nobody, the image root's
  // 0600) hands over the client's own description and tells crosvm not to lock it.
  ::fchmod(handed, 0600);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 ||
        ::setresuid(65534, 65534, 65534) != 0 || ::prctl(PR_SET_DUMPABLE, 1) != 0)
      ::_exit(10);
    process::FdPlan nobody_fds;
    auto unlocked = vmm::crosvm_disk_args(RawDisk{named, true}, 0, dir.path(), nobody_fds);
    if (!unlocked)
      ::_exit(11);
    if (*unlocked != std::vector<std::string>{"--block", "/proc/self/fd/3,lock=false"})
      ::_exit(12);
    ::_exit(same_description(nobody_fds.entries()[0].source.get(), handed) ? 0 : 13);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  ::close(handed);
}
