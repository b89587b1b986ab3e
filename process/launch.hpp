// Starting a VMM child: argv without a shell, a clean environment, exactly the planned fds at
// their numbers, its own process group, death with the supervisor, and a bounded fd table.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "crosvisor/error.hpp"
#include "process/fd_plan.hpp"
#include "process/sandbox.hpp"

namespace crosvisor::process {

struct LaunchRequest {
  // A path, or a bare name looked up on the supervisor's PATH.
  std::filesystem::path binary;
  // The arguments after argv[0].
  std::vector<std::string> args;
  // Every fd the child gets, 0, 1 and 2 included; anything not planned is closed at exec.
  FdPlan fds;
  // "NAME=value" entries; nothing of the supervisor's own environment leaks through.
  std::vector<std::string> environment{"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"};
  rlim_t max_open_files = 4096;
  // A network namespace (an fd of the supervisor's) the child joins before exec: dnsmasq, which
  // serves a network from inside it. -1: the supervisor's own.
  int network_namespace = -1;
  // The child dies with the supervisor (PR_SET_PDEATHSIG): every VMM but those that outlive it
  // on purpose (live restore), whose supervisor's successor takes them over.
  bool die_with_supervisor = true;
  // Confined (sandbox.hpp): its ids, no capabilities, no_new_privs and, with namespaces, a root
  // and namespaces of its own. Unset: it runs as the supervisor does.
  std::optional<Sandbox> sandbox;
  // cgroup.procs files (cgroups.hpp) the child moves itself into before exec, so that nothing
  // it runs is ever outside its cgroup.
  std::vector<std::string> join_cgroups;
};

struct SpawnedChild {
  pid_t pid = -1;
  // Readable when the child exits; the only handle through which it is signalled and reaped.
  UniqueFd pidfd;
};

// The absolute path `binary` names: itself when it contains a slash, else the PATH match.
Expected<std::filesystem::path> resolve_binary(const std::filesystem::path& binary);

// Starts the child. The calling thread becomes its "parent" for PR_SET_PDEATHSIG: call this from
// a thread that lives as long as the supervisor (the reactor thread), never from a pool thread.
Expected<SpawnedChild> spawn_child(const LaunchRequest& request);

// Waits for child `pid` (one that has ended, or is about to) and reaps it.
void reap_child(pid_t pid);

// Whose child a new child is.
struct Lineage {
  pid_t supervisor;  // the process the child dies with, and that reaps it
  // The caller is the supervisor's spawner (spawner.hpp), not the supervisor: the child becomes
  // its sibling (CLONE_PARENT), the supervisor's child, as if the supervisor had started it.
  bool sibling;
};

// spawn_child for a given lineage. A sibling that failed before exec cannot be reaped by the
// caller: its pid is left in `unreaped`, for the supervisor to reap.
Expected<SpawnedChild> spawn_child(const LaunchRequest& request, Lineage lineage, pid_t& unreaped);

}  // namespace crosvisor::process
