#include "cluster/fence_clock.hpp"

namespace crosvisor::cluster {

Expected<FenceClock> FenceClock::make(std::chrono::seconds ttl, std::chrono::seconds margin) {
  if (margin.count() <= 0 || margin >= ttl)
    return make_error(ErrorKind::invalid_config,
                      "the fence margin (" + std::to_string(margin.count()) +
                          " s) must be more than 0 and less than the lease TTL (" +
                          std::to_string(ttl.count()) + " s)");
  return FenceClock(ttl, margin);
}

void FenceClock::renewed(Clock::time_point sent) {
  if (!last_sent_ || sent > *last_sent_)
    last_sent_ = sent;
}

std::optional<FenceClock::Clock::time_point> FenceClock::deadline() const {
  if (!last_sent_)
    return std::nullopt;
  return *last_sent_ + ttl_ - margin_;
}

}  // namespace crosvisor::cluster
