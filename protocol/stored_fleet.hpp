// A fleet message kept in the state store (store/records.hpp) and decoded again when crosvisord
// starts: its files are reopened by path, with the owner's rights (process/open_as.hpp), and the
// message goes through the same decoder as on the wire.
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "config/fleet_config.hpp"
#include "core/unique_fd.hpp"
#include "crosvisor/error.hpp"
#include "process/open_as.hpp"

namespace crosvisor::protocol {

// The files a fleet message names, one per fd index, each with the access its uses need (a
// writable disk or partition: read-write). An error for a message that names an index twice
// with different paths, or skips one.
Expected<std::vector<process::FileToOpen>> files_named(const nlohmann::json& fleet);

// The fleet, from the fds reopened for `files_named`, in order. A VM whose file could not be
// reopened stays in the fleet, marked unavailable with why (the user no longer may open it, it
// is gone): its fds are placeholders that never reach a VMM, and the fleet reports it failed.
Expected<config::FleetSpec> fleet_from_reopened(const nlohmann::json& fleet,
                                                std::vector<Expected<UniqueFd>> reopened);

}  // namespace crosvisor::protocol
