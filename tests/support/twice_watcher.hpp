// How many VMMs run each VM of `names` (the crosvm stand-in's command line names its VM),
// sampled every 100 ms on a thread of its own for as long as it lives: the most ever seen at
// once. What cluster tests assert stays at 1.
#pragma once

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "support/processes.hpp"

namespace crosvisor::test {

class TwiceWatcher {
 public:
  explicit TwiceWatcher(std::vector<std::string> names)
      : names_(std::move(names)), thread_([this] { run(); }) {}
  ~TwiceWatcher() {
    stop_ = true;
    thread_.join();
  }
  std::size_t most() const { return most_; }
  std::size_t samples() const { return samples_; }

 private:
  void run() {
    while (!stop_) {
      for (const auto& name : names_)
        most_ = std::max(most_.load(), processes_with_cmdline("--name " + name + " ").size());
      ++samples_;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  std::vector<std::string> names_;
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> most_{0};
  std::atomic<std::size_t> samples_{0};
  std::thread thread_;
};

}  // namespace crosvisor::test
