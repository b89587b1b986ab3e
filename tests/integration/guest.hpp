// The test guest (guest/build) described as VM files and specs, with its behaviour scripted
// through the kernel command line (see guest/init).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "crosvisor/vm_spec.hpp"
#include "support/temp_dir.hpp"

namespace crosvisor::test {

inline constexpr const char* kGuestReady = "crosvisor-guest: ready";

// A VM file for the test guest; `guest_args` are cv.* options for guest/init.
std::string guest_toml(const std::string& name, const std::string& guest_args,
                       const std::string& extra_keys = "");

// The same as a spec, as an embedding application would build it.
VmSpec guest_spec(const std::string& name, const std::string& guest_args);

// The kernel parameters every stand-in VM starts with, before its own. reboot=k: under crosvm,
// a triple-fault reboot (reboot=t) exits 0 (docs/vmm-backends.md).
inline constexpr std::string_view kFakeCrosvmParams = "console=ttyS0 reboot=k panic=-1 ";

// A crosvm VM run by the crosvm stand-in (testing/fake_crosvm); `params` carries its
// fake_crosvm.* script. It is ready when the stand-in's "guest" says so.
inline constexpr const char* kFakeGuestReady = "fake-crosvm guest: ready";
VmSpec fake_crosvm_spec(const std::string& name, const std::string& params);
// Without `name_binary`, the file names no VMM binary: the supervisor must be given one.
std::string fake_crosvm_toml(const std::string& name, const std::string& params,
                             bool name_binary = true);

// Fails the test early, with a hint, when guest/build has not run.
void require_guest();

}  // namespace crosvisor::test
