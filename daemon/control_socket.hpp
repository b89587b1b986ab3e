// The daemon's listening socket. Its directory is 0700 (0711 when other users may connect) and
// must be the daemon user's own; the socket is 0600 (0666 when shared). A lock file beside it tells
// a live daemon from a dead one: a socket file whose lock nobody holds is stale and replaced; a
// live daemon's is never stolen.
#pragma once

#include <filesystem>

#include "core/unique_fd.hpp"
#include "crosvisor/error.hpp"

namespace crosvisor::daemon {

struct ControlSocket {
  std::filesystem::path path;
  UniqueFd listener;  // non-blocking, close-on-exec
  UniqueFd lock;      // held for the daemon's life
  ~ControlSocket();   // removes the socket file
  ControlSocket() = default;
  ControlSocket(ControlSocket&&) = default;
  ControlSocket& operator=(ControlSocket&&) = default;
};

Expected<ControlSocket> open_control_socket(const std::filesystem::path& path, bool shared);

}  // namespace crosvisor::daemon
