// How `vm` talks to its user: errors on stderr with the exit code their kind calls for, and
// tables whose columns fit their widest cell.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crosvisor/error.hpp"
#include "crosvisor/vm_event.hpp"

namespace crosvisor::cli {

// Prints "vm: MESSAGE" (or "PREFIX: MESSAGE") on stderr; returns the exit code for its kind.
int report(const Error& error, std::string_view prefix = "vm");

// "-" for nothing, else the value.
template <class T>
std::string or_dash(const std::optional<T>& value) {
  return value ? std::to_string(*value) : "-";
}

// "1m05s", "2h03m", "-" for none.
std::string duration_text(std::int64_t ms);
// Unix time in ms as local time, strftime's `format` (e.g. "%Y-%m-%d %H:%M:%S").
std::string local_time(std::int64_t unix_ms, const char* format = "%Y-%m-%d %H:%M:%S %Z");
// "vm web: dead (CRASH): detail", as `vm run` reports a state change.
std::string event_text(const VmEvent& event);

class Table {
 public:
  explicit Table(std::vector<std::string> header, std::string indent = "")
      : indent_(std::move(indent)) {
    rows_.push_back(std::move(header));
  }
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  // On stdout; the last column is not padded.
  void print() const;

 private:
  std::string indent_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace crosvisor::cli
