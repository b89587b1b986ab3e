#include "lifecycle/fleet_policy.hpp"

#include <algorithm>

namespace crosvisor::lifecycle {

std::optional<std::chrono::milliseconds> RestartTracker::on_death(DeathReason reason,
                                                                  Clock::time_point now) {
  if (failed_)
    return std::nullopt;
  switch (spec_.policy) {
    case config::RestartPolicy::never:
      return std::nullopt;
    case config::RestartPolicy::on_failure:
      if (reason == DeathReason::shutdown)
        return std::nullopt;
      break;
    case config::RestartPolicy::always:
      break;
  }
  while (!recent_.empty() && now - recent_.front() > spec_.window)
    recent_.pop_front();
  if (recent_.size() >= spec_.max_restarts) {
    failed_ = true;  // past the intensity: the VM is marked failed, the fleet goes on
    return std::nullopt;
  }
  // 1x, 2x, 4x ... the base delay for successive restarts within the window.
  auto delay = spec_.backoff;
  for (std::size_t i = 0; i < recent_.size() && delay < kMaxBackoff; ++i)
    delay *= 2;
  recent_.push_back(now);
  ++restarts_;
  return std::min(delay, kMaxBackoff);
}

void RestartTracker::resume(std::uint32_t restarts, std::deque<Clock::time_point> recent) {
  restarts_ = restarts;
  recent_ = std::move(recent);
}

void RestartTracker::reset() {
  recent_.clear();
  failed_ = false;
}

StartPlan::StartPlan(std::vector<std::vector<std::size_t>> after, std::size_t concurrency)
    : after_(std::move(after)),
      stage_(after_.size(), Stage::waiting),
      concurrency_(std::max<std::size_t>(1, concurrency)) {}

std::vector<std::size_t> StartPlan::startable() {
  std::vector<std::size_t> now;
  for (std::size_t i = 0; i < stage_.size() && starting_ < concurrency_; ++i) {
    if (stage_[i] != Stage::waiting)
      continue;
    const bool deps_up = std::all_of(after_[i].begin(), after_[i].end(),
                                     [&](std::size_t d) { return stage_[d] == Stage::up; });
    if (!deps_up)
      continue;
    stage_[i] = Stage::starting;
    ++starting_;
    now.push_back(i);
  }
  return now;
}

void StartPlan::start_now(std::size_t i) {
  if (stage_[i] != Stage::waiting)
    return;
  stage_[i] = Stage::starting;
  ++starting_;
}

void StartPlan::on_up(std::size_t i) {
  if (stage_[i] == Stage::starting)
    --starting_;
  stage_[i] = Stage::up;
}

std::vector<std::size_t> StartPlan::on_given_up(std::size_t i) {
  if (stage_[i] == Stage::starting)
    --starting_;
  stage_[i] = Stage::given_up;
  // Blocking spreads along `after` until nothing changes (the graph is acyclic and small).
  std::vector<std::size_t> newly;
  for (bool changed = true; changed;) {
    changed = false;
    for (std::size_t v = 0; v < stage_.size(); ++v) {
      if (stage_[v] != Stage::waiting)
        continue;
      if (std::any_of(after_[v].begin(), after_[v].end(),
                      [&](std::size_t d) { return doomed(d); })) {
        stage_[v] = Stage::blocked;
        newly.push_back(v);
        changed = true;
      }
    }
  }
  return newly;
}

void StartPlan::on_restart(std::size_t i) {
  if (stage_[i] != Stage::given_up)
    return;
  stage_[i] = Stage::starting;
  ++starting_;
  for (bool changed = true; changed;) {
    changed = false;
    for (std::size_t v = 0; v < stage_.size(); ++v) {
      if (stage_[v] != Stage::blocked)
        continue;
      if (std::none_of(after_[v].begin(), after_[v].end(),
                       [&](std::size_t d) { return doomed(d); })) {
        stage_[v] = Stage::waiting;
        changed = true;
      }
    }
  }
}

bool StartPlan::all_up() const {
  return std::all_of(stage_.begin(), stage_.end(), [](Stage s) { return s == Stage::up; });
}

}  // namespace crosvisor::lifecycle
