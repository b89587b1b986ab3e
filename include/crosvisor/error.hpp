// The error type of crosvisor's functional core: a closed set of kinds, each with a message a
// user can act on. Fallible core functions return Expected<T>; exceptions exist only at the edges.
#pragma once

#include <expected>
#include <string>
#include <string_view>

namespace crosvisor {

enum class ErrorKind {
  invalid_config,  // a VM or fleet description is wrong (names file, line and key)
  io,              // a file, socket or pipe operation failed (names the path and errno text)
  not_found,       // a named VM, binary or file does not exist
  launch,          // the VMM child could not be started
  state,           // the request does not fit the VM's current state (e.g. VM is dead)
  protocol,        // a peer (QMP, a client) sent something we cannot understand
};

struct Error {
  ErrorKind kind;
  std::string message;

  friend bool operator==(const Error&, const Error&) = default;
};

template <class T>
using Expected = std::expected<T, Error>;

inline std::unexpected<Error> make_error(ErrorKind kind, std::string message) {
  return std::unexpected<Error>(Error{kind, std::move(message)});
}

// "open /x/y: No such file or directory" from the current errno.
Error errno_error(ErrorKind kind, std::string_view what, int errnum);

std::string_view to_string(ErrorKind kind);

}  // namespace crosvisor
