// crosvisor's errors across the actor boundary: an Error becomes a caf::error of the category
// "crosvisor" (code = ErrorKind, context = the message) and comes back out with its kind, so that
// a refusal deep in an actor reaches a client as what it is, not as "runtime_error".
#pragma once

#include <caf/error.hpp>
#include <caf/fwd.hpp>

#include "crosvisor/error.hpp"

namespace crosvisor {

caf::error to_caf_error(const Error& error);
caf::error to_caf_error(ErrorKind kind, std::string message);
// Ours keep their kind and message; CAF's own (no answer in time, the actor is gone) become
// `unavailable`, described in words.
Error from_caf_error(const caf::error& error);
// Lets actor_system::render print our errors as their message (optional: from_caf_error needs
// nothing registered).
void add_error_category(caf::actor_system_config& config);

}  // namespace crosvisor
