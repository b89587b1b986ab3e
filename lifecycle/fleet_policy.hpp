// The pure logic of fleet supervision, testable without actors or processes:
//   - RestartTracker: Erlang/OTP-style restart intensity (at most max_restarts within window)
//     and exponential backoff, for one VM;
//   - StartPlan: which VMs may start now, given `after` and the concurrency limit.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "config/fleet_config.hpp"
#include "crosvisor/vm_state.hpp"

namespace crosvisor::lifecycle {

inline constexpr std::chrono::milliseconds kMaxBackoff{30'000};

class RestartTracker {
 public:
  using Clock = std::chrono::steady_clock;
  explicit RestartTracker(config::RestartSpec spec) : spec_(spec) {}

  // The VM died: how long to wait before restarting it, or nothing when it stays down (its
  // policy says so, or its restart intensity is spent: then failed() is true).
  std::optional<std::chrono::milliseconds> on_death(DeathReason reason, Clock::time_point now);
  bool failed() const { return failed_; }
  std::uint32_t restarts() const { return restarts_; }
  // A restart asked for by hand starts the count afresh.
  void reset();
  // The restarts within the window so far, oldest first: what a supervisor's successor needs to
  // go on counting (resume).
  const std::deque<Clock::time_point>& recent() const { return recent_; }
  // Goes on from an earlier supervisor's count: `restarts` in all, `recent` within the window.
  void resume(std::uint32_t restarts, std::deque<Clock::time_point> recent);

 private:
  config::RestartSpec spec_;
  std::deque<Clock::time_point> recent_;  // restarts within the window
  std::uint32_t restarts_ = 0;
  bool failed_ = false;
};

class StartPlan {
 public:
  // `after[i]`: the indices VM i waits for.
  StartPlan(std::vector<std::vector<std::size_t>> after, std::size_t concurrency);

  // VMs that may start now (each returned once); the caller starts them.
  std::vector<std::size_t> startable();
  // VM i is up (ready, or running when it has no ready condition): its dependents may go.
  void on_up(std::size_t i);
  // VM i starts now, whatever it waits for and however many start: its VMM runs already (taken
  // over from an earlier supervisor). It is never returned by startable().
  void start_now(std::size_t i);
  // VM i will not come up (failed for good): it no longer holds a start slot, and every VM that
  // waits for it, directly or through others, is blocked. Returns those newly blocked.
  std::vector<std::size_t> on_given_up(std::size_t i);
  // A given-up VM i is started again by hand: VMs blocked only by it wait again.
  void on_restart(std::size_t i);
  bool blocked(std::size_t i) const { return stage_[i] == Stage::blocked; }
  bool all_up() const;

 private:
  enum class Stage { waiting, starting, up, given_up, blocked };
  bool doomed(std::size_t i) const {
    return stage_[i] == Stage::given_up || stage_[i] == Stage::blocked;
  }
  std::vector<std::vector<std::size_t>> after_;
  std::vector<Stage> stage_;
  std::size_t concurrency_;
  std::size_t starting_ = 0;
};

}  // namespace crosvisor::lifecycle
