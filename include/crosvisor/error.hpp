// The error type of crosvisor's functional core: a closed set of kinds, each with a message a
// user can act on. Fallible core functions return Expected<T>; exceptions exist only at the edges.
// The kind travels with the error from the core through the actors (crosvisor/error_bridge.hpp)
// and the control socket ("kind" in error replies) to the `vm` command, whose exit code follows
// from it (docs/cli.md has the table).
#pragma once

#include <expected>
#include <optional>
#include <string>
#include <string_view>

namespace crosvisor {

enum class ErrorKind {
  invalid_config,  // a VM or fleet description is wrong (names file, line and key)
  invalid_image,   // a kernel, disk or partition image cannot be used as given: not a regular
                   // file, empty, not raw, misaligned, past a GPT limit, or a malformed
                   // composite description
  io,              // a file, socket or pipe operation failed (names the path and errno text)
  not_found,       // a named VM, fleet, binary or file does not exist (or is not the caller's)
  launch,          // the VMM child could not be started
  state,           // the request does not fit the VM's current state (e.g. VM is dead)
  protocol,        // a peer sent something malformed: QMP, or a client's request (its fields,
                   // its VM description, the fds that came with it)
  conflict,        // a name, CID or fleet is already taken
  permission,      // the caller may not do this
  unavailable,     // crosvisord cannot be reached, or is going away
  limit,           // a configured limit was reached
  interrupted,     // a signal ended the wait (client side)
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

// A few words for people ("invalid configuration").
std::string_view to_string(ErrorKind kind);
// The kind's name on the wire and in JSON ("invalid_config"), and back.
std::string_view kind_name(ErrorKind kind);
std::optional<ErrorKind> kind_named(std::string_view name);

}  // namespace crosvisor
