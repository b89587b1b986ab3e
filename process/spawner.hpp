// The spawner: a helper process that starts VMM children for a supervisor, so that starting one
// costs the same with thousands of VMs running as with none.
//
// Why: clone copies the fd table of the process that clones, and exec then closes, one by one,
// every fd the child inherited. A supervisor holds four fds per VM, so each start paid for every
// VM already running: O(N) per start, O(N^2) for a fleet; at 3 000 VMs a quarter of all CPU went
// to closing fds in new VMMs (docs/performance.md). The spawner holds only the fds of the launch
// in hand.
//
// It is the supervisor's own program run again (argv[1] is kSpawnerFlag, its channel fd 3): a
// fresh process, not a fork of a threaded one, so it may allocate and use the same launch code.
// Its children are the supervisor's (CLONE_PARENT): the supervisor watches, signals and reaps
// them through their pidfds as if it had started them, and they die with the same thread
// (PR_SET_PDEATHSIG follows the parent, the thread that started the spawner).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string_view>
#include <utility>
#include <vector>

#include "crosvisor/error.hpp"
#include "process/launch.hpp"

namespace crosvisor::process {

inline constexpr std::string_view kSpawnerFlag = "--crosvisor-spawner";

// First thing in main() of a program that may serve as a spawner: when this process was started
// as one, it serves until its supervisor closes the channel and exits (_exit: nothing of the
// program's own runs at its end); otherwise it returns.
void serve_if_spawner(int argc, char** argv);

class Spawner {
 public:
  // Starts `program` (whose main calls serve_if_spawner) as the spawner. The calling thread is
  // the parent of every child it starts, for PR_SET_PDEATHSIG: the reactor thread.
  static Expected<Spawner> start(const std::filesystem::path& program);

  Spawner(Spawner&& other) noexcept
      : helper_{std::exchange(other.helper_.pid, -1), std::move(other.helper_.pidfd)},
        channel_(std::move(other.channel_)),
        broken_(other.broken_),
        undelivered_(other.undelivered_) {}
  Spawner& operator=(Spawner&&) = delete;
  // Closes the channel (the spawner then ends) and reaps it.
  ~Spawner();

  // As spawn_child; the child is this process's.
  Expected<SpawnedChild> spawn(const LaunchRequest& request);
  // False once the spawner has ended or its channel failed: start another.
  bool alive() const;
  // After a failed spawn: whether the launch never reached the spawner, so that another may
  // make it. One that reached it may have started a child whose answer was lost (a child of
  // the calling thread that nobody watches: see stray_children).
  bool undelivered() const { return undelivered_; }
  pid_t pid() const { return helper_.pid; }
  // The spawner's pidfd: readable once it has ended.
  int pidfd() const { return helper_.pidfd.get(); }

 private:
  Spawner(SpawnedChild helper, UniqueFd channel)
      : helper_(std::move(helper)), channel_(std::move(channel)) {}

  SpawnedChild helper_;
  UniqueFd channel_;
  bool broken_ = false;
  bool undelivered_ = false;
};

// The children of the calling thread (the parent of every child a spawner it started makes)
// that are not in `known`: what a spawner that died mid-launch may have left.
std::vector<pid_t> stray_children(const std::vector<pid_t>& known);

}  // namespace crosvisor::process
