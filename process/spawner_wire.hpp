// What crosses the channel between a supervisor and its spawner (spawner.hpp): a launch request as
// bytes with its fds attached in order, and the spawner's answer. Both ends are the same program
// (the spawner is the supervisor's own binary run again), so the format is private to one build.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crosvisor/error.hpp"
#include "process/launch.hpp"

namespace crosvisor::process::spawner_wire {

struct Request {
  std::string bytes;
  std::vector<int> fds;  // the request's own, borrowed: the planned sources, then its namespace
};

// The request as it travels, its program resolved by the supervisor (the spawner runs with a PATH
// of its own).
Request encode(const LaunchRequest& request, const std::filesystem::path& binary);
// The request again, owning its fds. A malformed message, or fds that do not match it, is a
// protocol error.
struct Launch {
  LaunchRequest request;
  UniqueFd network_namespace;  // request.network_namespace borrows it
};
Expected<Launch> decode(std::string_view bytes, std::vector<UniqueFd> fds);

struct Answer {
  pid_t pid = -1;       // the child started
  pid_t unreaped = -1;  // a child that failed before exec, for the supervisor to reap
  std::optional<Error> error;
};

std::string encode(const Answer& answer);
Expected<Answer> decode_answer(std::string_view bytes);

}  // namespace crosvisor::process::spawner_wire
