// A host's membership of a cluster (docs/cluster.md): its lease, renewed five times per TTL on a
// thread of its own, its records (host_record.hpp), and its fence. A second thread, a timer that
// nothing else blocks, calls `fence` once the FenceClock's deadline passes without a renewal; a
// lease found gone fences at once. After a fence the host joins again, with a new lease, as
// soon as etcd answers, and says so through `joined`: it must then start only what the cluster
// still gives it. Plain C++: the daemon's actors hear of it through the callbacks.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "cluster/etcd_client.hpp"
#include "cluster/fence_clock.hpp"
#include "cluster/host_record.hpp"

namespace crosvisor::cluster {

class HostAgent {
 public:
  struct Options {
    EtcdOptions etcd;
    HostRecord record;  // lease and joined_at are filled in
    std::chrono::seconds ttl{10};
    std::chrono::seconds margin{3};
    std::function<void()> fence;                     // on the timer thread, once per lease
    std::function<void(std::int64_t lease)> joined;  // after a fence, with the new lease
    // The fence's deadline moved (each renewal, each join): for a keeper in another process
    // (fence_keeper.hpp). Called with the agent's lock held: it must only store.
    std::function<void(FenceClock::Clock::time_point)> deadline_moved;
  };

  // Joins at once: a lease, then its records. A name held by another live host is waited for
  // up to one TTL (it may be this host's own lease, left by a daemon killed a moment ago), then
  // refused (conflict); etcd out of reach is refused (io).
  static Expected<std::unique_ptr<HostAgent>> join(Options options);
  // Leaves: its lease revoked (its live record goes at once), its threads ended.
  ~HostAgent();
  HostAgent(const HostAgent&) = delete;
  HostAgent& operator=(const HostAgent&) = delete;

  std::int64_t lease() const;
  std::size_t fences() const;  // how many times it fenced itself

 private:
  HostAgent(Options options, EtcdClient client, FenceClock clock);
  Expected<void> join_once();  // on the renewing thread (or before it runs)
  void renew_loop();
  void fence_loop();
  void fence_now(std::unique_lock<std::mutex>& lock);

  Options options_;
  EtcdClient client_;  // the renewing thread's alone, once it runs
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  FenceClock clock_;
  std::int64_t lease_ = 0;
  bool fenced_ = false;  // for the current lease
  std::size_t fences_ = 0;
  bool stopping_ = false;
  std::thread renewer_;
  std::thread timer_;
};

}  // namespace crosvisor::cluster
