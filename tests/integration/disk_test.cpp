// Disks on real guests: a composite disk assembled from partition images at launch, raw images,
// and the exact set of fds a VMM inherits.
#include <signal.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <catch2/catch.hpp>
#include <fstream>
#include <regex>

#include "crosvisor/messages.hpp"
#include "crosvisor/service.hpp"
#include "integration/guest.hpp"
#include "integration/harness.hpp"
#include "support/processes.hpp"
#include "support/temp_dir.hpp"

using namespace crosvisor;
using namespace std::chrono_literals;

namespace {

std::set<int> fd_references(const std::string& text) {
  std::set<int> numbers;
  static const std::regex reference(R"((?:/proc/self/fd/|fd=)(\d+))");
  for (std::sregex_iterator it(text.begin(), text.end(), reference), end; it != end; ++it) {
    numbers.insert(std::stoi((*it)[1]));
  }
  return numbers;
}

}  // namespace

TEST_CASE(
    "a guest sees a three-partition composite disk by label, and writes land only where allowed") {
  test::require_guest();
  test::TempDir images;
  const auto boot =
      images.write("boot.img", "BOOT-PARTITION" + std::string(4000 - 14, 'b'));  // RO, unaligned
  const auto data = images.write("data.img", "DATA-PARTITION" + std::string(8192 - 14, 'd'));  // RW
  const auto conf = images.write("conf.img", "CONF-PARTITION" + std::string(4096 - 14, 'c'));  // RO
  const auto raw =
      images.write("raw.img", "RAW-DISK-IMAGE" + std::string(65536 - 14, 'r'));  // RW raw
  VmSpec spec = test::guest_spec(
      "composite",
      "cv.show_disks=1 cv.write=vda2:guest-wrote-data,vda3:guest-wrote-conf,vdb:guest-wrote-raw "
      "cv.then=poweroff");
  spec.disks = {
      CompositeDisk{{{"boot", boot, false}, {"data", data, true}, {"config", conf, false}}},
      RawDisk{raw, true}};
  test::Harness h;
  h.create(spec);
  const VmEvent dead = h.await_state(VmState::dead);
  INFO([&] {
    std::string all;
    for (const auto& line : h.console)
      all += line + "\n";
    return all;
  }());
  CHECK(dead.reason == DeathReason::shutdown);
  CHECK(h.console_has("disk vda1 label=boot size=8 first=BOOT-PARTITIONbb"));
  CHECK(h.console_has("disk vda2 label=data size=16 first=guest-wrote-data"));
  // The guest may write to a read-only partition, but only into a throwaway layer.
  CHECK(h.console_has("disk vda3 label=config size=8 first=guest-wrote-conf"));
  CHECK(h.console_has("disk vdb label=- size=128 first=guest-wrote-rawr"));
  CHECK(test::read_file(data).substr(0, 16) == "guest-wrote-data");
  CHECK(test::read_file(data).size() == 8192);
  CHECK(test::read_file(conf) == "CONF-PARTITION" + std::string(4096 - 14, 'c'));
  CHECK(test::read_file(boot) == "BOOT-PARTITION" + std::string(4000 - 14, 'b'));
  CHECK(test::read_file(raw).substr(0, 15) == "guest-wrote-raw");
}

TEST_CASE("a read-only raw disk cannot be written by the guest") {
  test::require_guest();
  test::TempDir images;
  const auto raw = images.write("ro.img", "READ-ONLY-IMAGE" + std::string(65536 - 15, 'x'));
  VmSpec spec =
      test::guest_spec("rodisk", "cv.show_disks=1 cv.write=vda:scribble cv.then=poweroff");
  spec.disks = {RawDisk{raw, false}};
  test::Harness h;
  h.create(spec);
  CHECK(h.await_state(VmState::dead).reason == DeathReason::shutdown);
  CHECK(h.console_has("crosvisor-guest: write failed vda"));
  CHECK(test::read_file(raw) == "READ-ONLY-IMAGE" + std::string(65536 - 15, 'x'));
}

TEST_CASE(
    "the VMM inherits exactly the planned fds: 0, 1, 2 and every /proc/self/fd it is told about") {
  test::TempDir images;
  const auto kernel = images.write("vmlinuz", "not really a kernel");
  VmSpec spec;
  spec.name = "fdprobe";
  spec.kernel = kernel;
  spec.initrd = images.write("initrd", "initrd");
  spec.vmm_binary = FD_PROBE_BINARY;
  spec.disks = {CompositeDisk{{{"a", images.write("a.img", std::string(4096, 'a')), true},
                               {"b", images.write("b.img", std::string(100, 'b')), false}}},
                RawDisk{images.write("raw.img", std::string(512, 'r')), false}};
  test::Harness h;
  auto vm = h.create(spec);
  const VmEvent running = h.await_state(VmState::running);
  const pid_t pid = std::stoi(running.detail.substr(4));

  std::string cmdline = test::read_file("/proc/" + std::to_string(pid) + "/cmdline");
  std::set<int> planned = fd_references(cmdline);
  // The VMDK descriptor names the composite's parts: they are planned too.
  static const std::regex vmdk_drive(R"(format=vmdk,file=/proc/self/fd/(\d+))");
  std::smatch match;
  REQUIRE(std::regex_search(cmdline, match, vmdk_drive));
  const std::string descriptor =
      test::read_file("/proc/" + std::to_string(pid) + "/fd/" + match[1].str());
  const auto from_descriptor = fd_references(descriptor);
  CHECK(from_descriptor.size() == 5);  // header, a, the qcow2 layer over b, filler, footer
  planned.insert(from_descriptor.begin(), from_descriptor.end());
  planned.insert({0, 1, 2});
  INFO([&] {
    std::string links;
    for (int fd : test::open_fds(pid)) {
      std::error_code ec;
      links += std::to_string(fd) + " -> " +
               std::filesystem::read_symlink(
                   "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd), ec)
                   .string() +
               "\n";
    }
    return links;
  }());
  CHECK(test::open_fds(pid) == planned);
  CHECK(planned.size() == 3 + 2 /*kernel, initrd*/ + 1 /*raw*/ + 3 /*a, b, b overlay*/ +
                              3 /*header, footer, filler*/ + 1 /*vmdk*/ + 2 /*console, qmp*/);

  h.client->send(vm, stop_atom::value, kill_atom::value);
  CHECK(h.await_state(VmState::dead).reason == DeathReason::killed);
}

TEST_CASE("an unusable partition fails the launch, naming it, and leaves nothing behind") {
  test::TempDir images;
  VmSpec spec = test::guest_spec("badpart", "");
  spec.disks = {CompositeDisk{{{"good", images.write("good.img", std::string(4096, 'g')), false},
                               {"gone", images / "missing.img", false}}}};
  test::Harness h;
  h.create(spec);
  const VmEvent dead = h.await_state(VmState::dead);
  CHECK(dead.reason == DeathReason::start_failed);
  CHECK(dead.detail ==
        "partition \"gone\" " + (images / "missing.img").string() + ": No such file or directory");
  CHECK(test::eventually([&] { return std::filesystem::is_empty(h.runtime.path()); }, 5s));
}
