// Cuts a byte stream (a serial console, a VMM's stderr) into lines. Carriage returns are dropped
// and an endless line is cut at `max_line` bytes, so a guest cannot make the supervisor buffer
// without bound.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace crosvisor::process {

class LineSplitter {
 public:
  explicit LineSplitter(std::size_t max_line = 4096) : max_line_(max_line) {}

  template <class OnLine>
  void feed(std::string_view data, OnLine&& on_line) {
    for (char c : data) {
      if (c == '\n') {
        on_line(std::string_view(pending_));
        pending_.clear();
      } else if (c != '\r') {
        pending_.push_back(c);
        if (pending_.size() >= max_line_) {
          on_line(std::string_view(pending_));
          pending_.clear();
        }
      }
    }
  }

  // Emits what is left after the stream ended without a final newline.
  template <class OnLine>
  void flush(OnLine&& on_line) {
    if (!pending_.empty())
      on_line(std::string_view(pending_));
    pending_.clear();
  }

 private:
  std::size_t max_line_;
  std::string pending_;
};

}  // namespace crosvisor::process
