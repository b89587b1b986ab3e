// The words every backend shares for talking to a running VMM: what the supervisor asks of it
// through its control channel, and what the VMM reports about its guest before it exits
// (GuestNotice, which the lifecycle reads, lives with it in lifecycle/).
#pragma once

#include <filesystem>

#include "lifecycle/guest_notice.hpp"

namespace crosvisor::vmm {

// How a VMM is controlled: QEMU's QMP (JSON lines over a stream socket, one long-lived session
// that also carries events) or crosvm's control socket (one JSON datagram per request over
// SOCK_SEQPACKET).
// `none`: a child that is not a VMM (dnsmasq), stopped with signals only.
enum class ControlProtocol { qmp, crosvm, none };

struct ControlChannel {
  ControlProtocol protocol = ControlProtocol::qmp;
  std::filesystem::path socket;  // where the VMM listens; the socket was bound before the launch
};

enum class ControlRequest {
  powerdown,  // press the ACPI power button: the guest decides whether and when to power off
  quit,       // end the VMM in an orderly way at once; the guest is not told
};

}  // namespace crosvisor::vmm
