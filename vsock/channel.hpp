// Connections between the host and a guest's vsock ports.
//
// AF_VSOCK, where the host kernel has a vsock transport (vhost-vsock): the guest is addressed by
// its CID. Hybrid vsock, for VMMs that implement vsock in user space (Firecracker,
// cloud-hypervisor): the host connects to the VMM's Unix socket and writes "CONNECT <port>\n"; the
// VMM answers "OK <host port>\n" and the socket is then the stream; a guest connecting to host port
// P reaches the Unix socket "<uds path>_<P>".
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>

#include "core/unique_fd.hpp"
#include "crosvisor/error.hpp"

namespace crosvisor::vsock {

// Host -> guest over hybrid vsock. Errors: the socket cannot be reached, the VMM refused the port
// (closed without answering), the answer is not "OK <number>", or no answer within `timeout`.
Expected<UniqueFd> hybrid_connect(const std::filesystem::path& uds_path, std::uint32_t port,
                                  std::chrono::milliseconds timeout);

// Guest -> host over hybrid vsock: a listening socket at "<uds_path>_<port>".
Expected<UniqueFd> hybrid_listen(const std::filesystem::path& uds_path, std::uint32_t port);
std::filesystem::path hybrid_listen_path(const std::filesystem::path& uds_path, std::uint32_t port);

// AF_VSOCK. Connecting refuses the reserved CIDs 0, 1 and 2: a guest has a CID >= 3.
Expected<UniqueFd> vsock_connect(std::uint32_t cid, std::uint32_t port,
                                 std::chrono::milliseconds timeout);
// Listens on `port` for any CID. Fails where the host has no vsock support.
Expected<UniqueFd> vsock_listen(std::uint32_t port);

// Waits up to `timeout` for a connection on a listening socket; returns it, or an error.
Expected<UniqueFd> accept_within(int listener, std::chrono::milliseconds timeout);

}  // namespace crosvisor::vsock
