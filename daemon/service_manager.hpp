// Tells the service manager (systemd, Type=notify) how crosvisord is doing: the sd_notify(3)
// protocol, one datagram of "KEY=value" lines to the unix socket $NOTIFY_SOCKET names. Spoken
// here rather than through libsystemd, which would map six more libraries (compression,
// cryptography) into every crosvisord for two calls (docs/performance.md: the idle daemon).
#pragma once

#include <string_view>

namespace crosvisor::daemon {

// Sends `state` ("READY=1\nSTATUS=...") when $NOTIFY_SOCKET is set; nothing otherwise, and
// nothing said when the manager cannot be reached (it is told, never asked).
void notify_service_manager(std::string_view state);

}  // namespace crosvisor::daemon
