// Sending bytes with file descriptors attached (SCM_RIGHTS): the control socket's clients, QMP's
// dump-guest-memory, and the helper that opens files with another user's rights.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

#include "core/unique_fd.hpp"
#include "crosvisor/error.hpp"

namespace crosvisor::process {

// Most fds one sendmsg may carry: the kernel's SCM_MAX_FD.
inline constexpr std::size_t kMaxFdsPerMessage = 253;

// One sendmsg: `bytes` (or their first part) with `fds` (at most kMaxFdsPerMessage) attached,
// retried on EINTR. Returns the bytes sent. Allocates nothing unless it fails: fit for a child
// between fork and exec (process/open_as.cpp).
Expected<std::size_t> send_with_fds(int socket, std::string_view bytes, std::span<const int> fds);

struct Received {
  std::size_t bytes = 0;  // 0: the peer closed its end
  std::vector<UniqueFd> fds;
  bool truncated = false;  // the message, or its fds, did not fit
};

// One recvmsg into `buffer`, its fds close-on-exec, retried on EINTR.
Expected<Received> receive_with_fds(int socket, std::span<char> buffer);

}  // namespace crosvisor::process
