#include "integration/guest.hpp"

#include <catch2/catch.hpp>

namespace crosvisor::test {
namespace {
const std::filesystem::path kGuestDir = CROSVISOR_GUEST_DIR;
}

std::string guest_toml(const std::string& name, const std::string& guest_args,
                       const std::string& extra_keys) {
  return "name = \"" + name + "\"\n" +                                          //
         "kernel = \"" + (kGuestDir / "vmlinuz").string() + "\"\n" +            //
         "initrd = \"" + (kGuestDir / "initramfs.cpio.gz").string() + "\"\n" +  //
         "params = \"console=ttyS0 reboot=t panic=-1 " + guest_args + "\"\n" +
         "accel = \"tcg\"\n"
         "memory_mib = 256\n"
         "debug = \"full\"\n"
         "ready = { console = \"" +
         kGuestReady + "\" }\n" + extra_keys;
}

VmSpec guest_spec(const std::string& name, const std::string& guest_args) {
  VmSpec spec;
  spec.name = name;
  spec.kernel = kGuestDir / "vmlinuz";
  spec.initrd = kGuestDir / "initramfs.cpio.gz";
  spec.params = "console=ttyS0 reboot=t panic=-1 " + guest_args;
  spec.accel = "tcg";
  spec.debug = DebugLevel::full;
  spec.ready = ConsoleReady{kGuestReady};
  return spec;
}

VmSpec fake_crosvm_spec(const std::string& name, const std::string& params) {
  VmSpec spec;
  spec.name = name;
  spec.vmm = VmmKind::crosvm;
  spec.vmm_binary = FAKE_CROSVM_BINARY;
  spec.kernel = kGuestDir / "vmlinuz";
  spec.params = std::string(kFakeCrosvmParams) + params;
  spec.debug = DebugLevel::full;
  spec.ready = ConsoleReady{kFakeGuestReady};
  return spec;
}

std::string fake_crosvm_toml(const std::string& name, const std::string& params, bool name_binary) {
  return "name = \"" + name + "\"\n" +  //
         "vmm = \"crosvm\"\n" +         //
         (name_binary ? "vmm_binary = \"" + std::string(FAKE_CROSVM_BINARY) + "\"\n" : "") +
         "kernel = \"" + (kGuestDir / "vmlinuz").string() + "\"\n" +         //
         "params = \"" + std::string(kFakeCrosvmParams) + params + "\"\n" +  //
         "debug = \"full\"\n" +                                              //
         "ready = { console = \"" + kFakeGuestReady + "\" }\n";
}

void require_guest() {
  INFO("the test guest is missing: run guest/build " << kGuestDir.string());
  REQUIRE(std::filesystem::exists(kGuestDir / "vmlinuz"));
  REQUIRE(std::filesystem::exists(kGuestDir / "initramfs.cpio.gz"));
}

}  // namespace crosvisor::test
