// CID grants must cost the same at any occupancy. For 0 %, 50 % and 99 % of the default range
// (2048..65535) taken, this scenario measures grant+release pairs: the bare policy, the policy
// with host-wide flock reservations, and the registry actor (a request from a scoped actor).
// The 0 % figures are the baseline of the same run.
#include <unistd.h>

#include <algorithm>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <chrono>
#include <cstdio>
#include <map>
#include <vector>

#include "actors/cid_registry.hpp"
#include "bench/bench.hpp"
#include "crosvisor/messages.hpp"
#include "vsock/cid_locks.hpp"
#include "vsock/cid_pool.hpp"

namespace crosvisor::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Figures {
  double per_second;
  double p50_us;
  double p99_us;
};

Figures summarize(std::vector<double> latencies_us, double total_seconds) {
  std::sort(latencies_us.begin(), latencies_us.end());
  return {static_cast<double>(latencies_us.size()) / total_seconds,
          latencies_us[latencies_us.size() / 2], latencies_us[latencies_us.size() * 99 / 100]};
}

// Occupies `fraction` of the range, then times `rounds` grants (each released again at once).
template <class Grant, class Release>
Figures measure(const vsock::CidRange& range, double fraction, int rounds, Grant grant,
                Release release) {
  const auto size = static_cast<std::size_t>(range.last - range.first + 1);
  const auto occupied = static_cast<std::size_t>(fraction * static_cast<double>(size));
  std::vector<std::uint32_t> filler;
  for (std::size_t i = 0; i < occupied; ++i)
    filler.push_back(grant());
  std::vector<double> latencies;
  latencies.reserve(static_cast<std::size_t>(rounds));
  const auto start = Clock::now();
  for (int i = 0; i < rounds; ++i) {
    const auto before = Clock::now();
    const std::uint32_t cid = grant();
    latencies.push_back(std::chrono::duration<double, std::micro>(Clock::now() - before).count());
    release(cid);
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  for (auto cid : filler)
    release(cid);
  return summarize(std::move(latencies), seconds);
}

}  // namespace

namespace {

void print(const char* what, double fraction, const Figures& f, const Figures& baseline) {
  std::printf(
      "cid: %-22s %3.0f%% taken: %10.0f grants/s  p50 %7.2f us  p99 %7.2f us  (p99 vs 0%%: %.2f)\n",
      what, fraction * 100, f.per_second, f.p50_us, f.p99_us, f.p99_us / baseline.p99_us);
}

}  // namespace

// One lock fd is held per granted CID; 8192 CIDs stay under common fd limits (hard limit here:
// 20000), so the locked variants use a range of that size.
const vsock::CidRange kLockedRange{2048, 2048 + 8191};

int cid_scenario(const Options& options) {
  const int rounds = options.quick ? 2000 : 20000;
  const double fractions[] = {0.0, 0.5, 0.99};

  {
    std::optional<Figures> baseline;
    for (double fraction : fractions) {
      auto pool = *vsock::CidPool::create({});
      const auto always = [](std::uint32_t) { return true; };
      const auto f = measure(
          vsock::CidRange{}, fraction, rounds, [&] { return *pool.grant(always); },
          [&](std::uint32_t cid) { pool.release(cid); });
      if (!baseline)
        baseline = f;
      print("policy", fraction, f, *baseline);
    }
  }
  {
    std::optional<Figures> baseline;
    const vsock::CidLocks locks("crosvisor-bench-" + std::to_string(getpid()));
    for (double fraction : fractions) {
      auto pool = *vsock::CidPool::create(kLockedRange);
      std::map<std::uint32_t, UniqueFd> held;
      const auto reserve = [&](std::uint32_t cid) {
        auto lock = locks.try_lock(cid);
        if (!lock || !*lock)
          return false;
        held.emplace(cid, std::move(**lock));
        return true;
      };
      const auto f = measure(
          kLockedRange, fraction, rounds,
          [&] {
            auto cid = pool.grant(reserve);
            if (!cid)
              throw std::runtime_error(cid.error().message);
            return *cid;
          },
          [&](std::uint32_t cid) {
            pool.release(cid);
            locks.unlock(cid, std::move(held.at(cid)));
            held.erase(cid);
          });
      if (!baseline)
        baseline = f;
      print("policy + reservation", fraction, f, *baseline);
    }
  }
  {
    caf::actor_system_config config;
    caf::actor_system system{config};
    caf::scoped_actor self{system};
    std::optional<Figures> baseline;
    for (double fraction : fractions) {
      auto registry = spawn_cid_registry(
          system, {kLockedRange, "crosvisor-bench-actor-" + std::to_string(getpid()),
                   options.work_dir / ("last-cid-" + std::to_string(fraction))});
      const auto f = measure(
          kLockedRange, fraction, rounds,
          [&] {
            std::uint32_t cid = 0;
            self->request(registry, caf::infinite, grant_atom::value,
                          caf::actor_cast<caf::actor>(self), std::uint32_t{0})
                .receive([&](std::uint32_t granted) { cid = granted; },
                         [&](caf::error& e) { throw std::runtime_error(system.render(e)); });
            return cid;
          },
          [&](std::uint32_t cid) { self->send(registry, release_atom::value, cid); });
      self->send_exit(registry, caf::exit_reason::user_shutdown);
      if (!baseline)
        baseline = f;
      print("registry actor", fraction, f, *baseline);
    }
  }
  return 0;
}

}  // namespace crosvisor::bench
