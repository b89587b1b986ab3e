#include "cluster/host_agent.hpp"

#include <spdlog/spdlog.h>

#include "core/unix_time.hpp"

namespace crosvisor::cluster {
namespace {

using Clock = FenceClock::Clock;

}  // namespace

Expected<std::unique_ptr<HostAgent>> HostAgent::join(Options options) {
  if (auto name = check_host_name(options.record.name); !name)
    return std::unexpected(name.error());
  auto clock = FenceClock::make(options.ttl, options.margin);
  if (!clock)
    return std::unexpected(clock.error());
  auto client = EtcdClient::open(options.etcd);
  if (!client)
    return std::unexpected(client.error());
  std::unique_ptr<HostAgent> agent(
      new HostAgent(std::move(options), std::move(*client), std::move(*clock)));
  // The name of a daemon killed a moment ago stays taken until its lease expires: waited for.
  const auto give_up = Clock::now() + agent->options_.ttl + std::chrono::seconds(1);
  for (;;) {
    auto joined = agent->join_once();
    if (joined)
      break;
    if (joined.error().kind != ErrorKind::conflict || Clock::now() >= give_up)
      return std::unexpected(joined.error());
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  agent->renewer_ = std::thread([raw = agent.get()] { raw->renew_loop(); });
  agent->timer_ = std::thread([raw = agent.get()] { raw->fence_loop(); });
  return agent;
}

HostAgent::HostAgent(Options options, EtcdClient client, FenceClock clock)
    : options_(std::move(options)), client_(std::move(client)), clock_(std::move(clock)) {}

HostAgent::~HostAgent() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (renewer_.joinable())
    renewer_.join();
  if (timer_.joinable())
    timer_.join();
  // Leaving: its live record goes with the lease, now rather than a TTL later.
  if (lease_ != 0) {
    if (auto revoked = client_.revoke(lease_); !revoked)
      spdlog::warn("cluster: leaving: {} (its record goes when the lease expires)",
                   revoked.error().message);
  }
}

std::int64_t HostAgent::lease() const {
  std::lock_guard lock(mutex_);
  return lease_;
}

std::size_t HostAgent::fences() const {
  std::lock_guard lock(mutex_);
  return fences_;
}

Expected<void> HostAgent::join_once() {
  const auto sent = Clock::now();
  auto lease = client_.grant(options_.ttl);
  if (!lease)
    return std::unexpected(lease.error());
  HostRecord record = options_.record;
  record.lease = *lease;
  record.joined_at_ms = unix_now_ms();
  const std::string value = to_json(record).dump();
  const std::string alive = kHostsPrefix + record.name;
  // Only if no live host has the name: never two hosts answering to one name.
  auto created = client_.commit(Txn{{{alive, Compare::Target::create_revision, {}, 0}},
                                    {{Operation::Kind::put, alive, value, *lease},
                                     {Operation::Kind::put, kKnownPrefix + record.name, value, 0}},
                                    {}});
  if (!created || !*created) {
    (void)client_.revoke(*lease);
    if (!created)
      return std::unexpected(created.error());
    return make_error(ErrorKind::conflict,
                      "host name " + record.name + " is held by a live host of the cluster");
  }
  std::lock_guard lock(mutex_);
  lease_ = *lease;
  fenced_ = false;
  clock_.renewed(sent);
  if (options_.deadline_moved)
    options_.deadline_moved(*clock_.deadline());
  spdlog::info("cluster: joined as {} (lease {:x}, TTL {} s) through {}", record.name, *lease,
               options_.ttl.count(), client_.endpoint());
  return {};
}

void HostAgent::renew_loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    changed_.wait_for(lock, clock_.renew_every(), [&] { return stopping_; });
    if (stopping_)
      break;
    if (fenced_) {
      // Fenced: joined again as a new member, with a new lease, once etcd answers.
      const std::int64_t old = lease_;
      lock.unlock();
      (void)client_.revoke(old);
      auto joined = join_once();
      lock.lock();
      if (joined) {
        const std::int64_t lease = lease_;
        lock.unlock();
        if (options_.joined)
          options_.joined(lease);
        lock.lock();
      }
      continue;
    }
    const std::int64_t lease = lease_;
    const auto sent = Clock::now();
    lock.unlock();
    auto renewed = client_.keep_alive(lease);
    lock.lock();
    if (renewed) {
      clock_.renewed(sent);
      if (options_.deadline_moved)
        options_.deadline_moved(*clock_.deadline());
      changed_.notify_all();
    } else if (renewed.error().kind == ErrorKind::not_found && lease == lease_) {
      // Its lease is gone (expired while unheard, or revoked): its VMs may be placed elsewhere
      // already.
      spdlog::error("cluster: {}: fencing now", renewed.error().message);
      fence_now(lock);
    } else {
      spdlog::warn("cluster: renewal unknown: {}", renewed.error().message);
    }
  }
}

void HostAgent::fence_loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    const auto deadline = clock_.deadline();
    if (!deadline || fenced_) {
      changed_.wait_for(lock, std::chrono::milliseconds(200));
      continue;
    }
    if (Clock::now() >= *deadline) {
      spdlog::error("cluster: no renewal of lease {:x} for {} s less {} s: fencing", lease_,
                    options_.ttl.count(), options_.margin.count());
      fence_now(lock);
      continue;
    }
    changed_.wait_until(lock, *deadline);
  }
}

void HostAgent::fence_now(std::unique_lock<std::mutex>& lock) {
  if (fenced_)
    return;
  fenced_ = true;
  ++fences_;
  lock.unlock();
  if (options_.fence)
    options_.fence();
  lock.lock();
  changed_.notify_all();
}

}  // namespace crosvisor::cluster
