// The last lines of a VM's console, kept in memory for `vm logs`: bounded both in lines and in
// bytes, so that a chatty guest costs the supervisor a fixed amount per VM. Pure logic.
#pragma once

#include <cstddef>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

namespace crosvisor::lifecycle {

class ConsoleTail {
 public:
  static constexpr std::size_t kDefaultMaxLines = 200;
  static constexpr std::size_t kDefaultMaxBytes = 16 * 1024;

  explicit ConsoleTail(std::size_t max_lines = kDefaultMaxLines,
                       std::size_t max_bytes = kDefaultMaxBytes)
      : max_lines_(max_lines), max_bytes_(max_bytes) {}

  void add(std::string_view line) {
    // A single line longer than the whole budget keeps only its end.
    if (line.size() > max_bytes_)
      line = line.substr(line.size() - max_bytes_);
    lines_.emplace_back(line);
    bytes_ += line.size();
    while (lines_.size() > max_lines_ || bytes_ > max_bytes_) {
      bytes_ -= lines_.front().size();
      lines_.pop_front();
    }
  }

  // The last `count` lines kept (all of them when count is 0), oldest first.
  std::vector<std::string> last(std::size_t count = 0) const {
    const std::size_t n = count == 0 ? lines_.size() : std::min(count, lines_.size());
    return std::vector<std::string>(lines_.end() - static_cast<std::ptrdiff_t>(n), lines_.end());
  }

  std::size_t size() const { return lines_.size(); }
  std::size_t bytes() const { return bytes_; }

 private:
  std::size_t max_lines_;
  std::size_t max_bytes_;
  std::deque<std::string> lines_;
  std::size_t bytes_ = 0;
};

}  // namespace crosvisor::lifecycle
