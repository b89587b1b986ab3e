// What a VMM says about its guest before it exits: the one word of the VMM's the lifecycle
// needs to tell a shutdown from a reset or a panic.
#pragma once

namespace crosvisor::lifecycle {

// What the VMM said about its guest (QEMU's SHUTDOWN and GUEST_PANICKED events). crosvm says the
// same with its exit code, so it never sends one.
enum class GuestNotice {
  powered_off,  // the guest shut itself down
  reset,        // the guest asked for a reset, and the VMM was told not to reboot it
  panicked,     // the guest kernel reported a panic (pvpanic)
};

}  // namespace crosvisor::lifecycle
