#include "crosvisor/error.hpp"

#include <cstring>

namespace crosvisor {

Error errno_error(ErrorKind kind, std::string_view what, int errnum) {
  return Error{kind, std::string(what) + ": " + std::strerror(errnum)};
}

std::string_view to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::invalid_config:
      return "invalid configuration";
    case ErrorKind::io:
      return "I/O error";
    case ErrorKind::not_found:
      return "not found";
    case ErrorKind::launch:
      return "launch failed";
    case ErrorKind::state:
      return "wrong state";
    case ErrorKind::protocol:
      return "protocol error";
  }
  return "error";
}

}  // namespace crosvisor
