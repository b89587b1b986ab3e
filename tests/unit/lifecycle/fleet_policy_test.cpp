#include "lifecycle/fleet_policy.hpp"

#include <catch2/catch.hpp>

using namespace crosvisor;
using namespace std::chrono_literals;

namespace {

// restart = "on-failure" with this intensity, a 10 s window and a 100 ms backoff.
config::RestartSpec on_failure(std::uint32_t max_restarts) {
  config::RestartSpec spec;
  spec.policy = config::RestartPolicy::on_failure;
  spec.max_restarts = max_restarts;
  spec.window = 10s;
  spec.backoff = 100ms;
  return spec;
}

}  // namespace

TEST_CASE("restart intensity: at most max_restarts within the window, with doubling backoff") {
  const auto spec = on_failure(3);
  lifecycle::RestartTracker tracker(spec);
  const auto t0 = lifecycle::RestartTracker::Clock::now();
  CHECK(tracker.on_death(DeathReason::crash, t0) == 100ms);
  CHECK(tracker.on_death(DeathReason::guest_panic, t0 + 1s) == 200ms);
  CHECK(tracker.on_death(DeathReason::crash, t0 + 2s) == 400ms);
  CHECK_FALSE(tracker.on_death(DeathReason::crash, t0 + 3s).has_value());  // the fourth: spent
  CHECK(tracker.failed());
  CHECK(tracker.restarts() == 3);

  lifecycle::RestartTracker slow(spec);
  CHECK(slow.on_death(DeathReason::crash, t0) == 100ms);
  CHECK(slow.on_death(DeathReason::crash, t0 + 20s) == 100ms);  // the first left the window
  CHECK_FALSE(slow.on_death(DeathReason::shutdown, t0 + 21s).has_value());  // not a failure
  CHECK_FALSE(slow.failed());
}

TEST_CASE("restart policies: never, on-failure and always") {
  const auto t0 = lifecycle::RestartTracker::Clock::now();
  config::RestartSpec never;
  CHECK_FALSE(lifecycle::RestartTracker(never).on_death(DeathReason::crash, t0).has_value());
  config::RestartSpec always;
  always.policy = config::RestartPolicy::always;
  always.backoff = 0ms;
  CHECK(lifecycle::RestartTracker(always).on_death(DeathReason::shutdown, t0) == 0ms);
  config::RestartSpec capped;
  capped.policy = config::RestartPolicy::always;
  capped.max_restarts = 100;
  capped.backoff = 10s;
  lifecycle::RestartTracker tracker(capped);
  std::chrono::milliseconds last{0};
  for (int i = 0; i < 10; ++i)
    last = *tracker.on_death(DeathReason::crash, t0);
  CHECK(last == lifecycle::kMaxBackoff);
}

TEST_CASE("the start plan honours `after` and the concurrency limit") {
  // 0: db; 1..3: web after db; 4: lb after all web.
  lifecycle::StartPlan plan({{}, {0}, {0}, {0}, {1, 2, 3}}, 2);
  CHECK(plan.startable() == std::vector<std::size_t>{0});
  CHECK(plan.startable().empty());  // each VM once
  plan.on_up(0);
  CHECK(plan.startable() == std::vector<std::size_t>{1, 2});  // two at a time
  plan.on_up(1);
  CHECK(plan.startable() == std::vector<std::size_t>{3});
  plan.on_up(2);
  plan.on_up(3);
  CHECK(plan.startable() == std::vector<std::size_t>{4});
  plan.on_up(4);
  CHECK(plan.all_up());

  lifecycle::StartPlan blocked({{}, {0}}, 4);
  CHECK(blocked.startable() == std::vector<std::size_t>{0});
  blocked.on_given_up(0);
  CHECK(blocked.startable().empty());  // its dependent waits
  CHECK_FALSE(blocked.all_up());
}

TEST_CASE("a VM that fails for good blocks what waits for it, and a restart by hand unblocks it") {
  // 0: db; 1: web after db; 2: lb after web; 3: cache, on its own.
  lifecycle::StartPlan plan({{}, {0}, {1}, {}}, 4);
  CHECK(plan.startable() == std::vector<std::size_t>{0, 3});
  CHECK(plan.on_given_up(0) == std::vector<std::size_t>{1, 2});  // through web, lb too
  CHECK(plan.blocked(1));
  CHECK(plan.blocked(2));
  CHECK_FALSE(plan.blocked(3));
  CHECK(plan.startable().empty());
  plan.on_restart(0);  // `vm fleet restart db`
  CHECK_FALSE(plan.blocked(1));
  CHECK(plan.startable().empty());  // web waits for db again
  plan.on_up(0);
  CHECK(plan.startable() == std::vector<std::size_t>{1});
}

TEST_CASE("a supervisor's successor goes on counting restarts within the window") {
  const auto spec = on_failure(2);
  const auto now = lifecycle::RestartTracker::Clock::now();
  lifecycle::RestartTracker resumed(spec);
  resumed.resume(5, {now - 3s, now - 1s});  // two restarts in the window already, five in all
  CHECK(resumed.restarts() == 5);
  CHECK_FALSE(resumed.on_death(DeathReason::crash, now).has_value());  // the intensity is spent
  CHECK(resumed.failed());
  lifecycle::RestartTracker older(spec);
  older.resume(5, {now - 30s, now - 1s});  // one has left the window
  CHECK(older.on_death(DeathReason::crash, now) == 200ms);
  CHECK(older.restarts() == 6);
  CHECK(older.recent().size() == 2);
}
