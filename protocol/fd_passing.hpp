// Sending bytes with file descriptors attached (SCM_RIGHTS), for clients of the control socket.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include "crosvisor/error.hpp"

namespace crosvisor::protocol {

// One sendmsg: `bytes` (or their first part) with `fds` attached. Returns the bytes sent.
Expected<std::size_t> send_with_fds(int socket, std::string_view bytes,
                                    const std::vector<int>& fds);

}  // namespace crosvisor::protocol
