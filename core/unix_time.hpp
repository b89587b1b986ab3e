// Wall-clock time as Unix milliseconds: what records, events and status carry across processes
// and hosts (a steady clock means nothing outside its process).
#pragma once

#include <chrono>
#include <cstdint>

namespace crosvisor {

inline std::int64_t unix_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace crosvisor
