#include "crosvisor/error.hpp"

#include <array>
#include <cstring>
#include <utility>

namespace crosvisor {
namespace {

struct KindNames {
  ErrorKind kind;
  std::string_view wire;
  std::string_view words;
};

// One table for both directions: a kind added without a name fails the unit test that walks it.
constexpr std::array<KindNames, 12> kKinds{{
    {ErrorKind::invalid_config, "invalid_config", "invalid configuration"},
    {ErrorKind::invalid_image, "invalid_image", "unusable image"},
    {ErrorKind::io, "io", "I/O error"},
    {ErrorKind::not_found, "not_found", "not found"},
    {ErrorKind::launch, "launch", "launch failed"},
    {ErrorKind::state, "state", "wrong state"},
    {ErrorKind::protocol, "protocol", "protocol error"},
    {ErrorKind::conflict, "conflict", "already taken"},
    {ErrorKind::permission, "permission", "not permitted"},
    {ErrorKind::unavailable, "unavailable", "unavailable"},
    {ErrorKind::limit, "limit", "limit reached"},
    {ErrorKind::interrupted, "interrupted", "interrupted"},
}};

}  // namespace

Error errno_error(ErrorKind kind, std::string_view what, int errnum) {
  return Error{kind, std::string(what) + ": " + std::strerror(errnum)};
}

std::string_view to_string(ErrorKind kind) {
  for (const auto& entry : kKinds) {
    if (entry.kind == kind)
      return entry.words;
  }
  return "error";
}

std::string_view kind_name(ErrorKind kind) {
  for (const auto& entry : kKinds) {
    if (entry.kind == kind)
      return entry.wire;
  }
  return "io";
}

std::optional<ErrorKind> kind_named(std::string_view name) {
  for (const auto& entry : kKinds) {
    if (entry.wire == name)
      return entry.kind;
  }
  return std::nullopt;
}

}  // namespace crosvisor
