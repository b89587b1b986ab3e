#include "cli/output.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <iostream>

#include "core/exit_codes.hpp"

namespace crosvisor::cli {

int report(const Error& error, std::string_view prefix) {
  std::cerr << prefix << ": " << error.message << '\n';
  return exit_code_for(error.kind);
}

std::string duration_text(std::int64_t ms) {
  if (ms <= 0)
    return "-";
  const auto s = ms / 1000;
  char text[32];
  if (s < 3600) {
    std::snprintf(text, sizeof(text), "%lldm%02llds", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  } else {
    std::snprintf(text, sizeof(text), "%lldh%02lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>((s / 60) % 60));
  }
  return text;
}

void Table::print() const {
  std::vector<std::size_t> widths;
  for (const auto& row : rows_) {
    if (widths.size() < row.size())
      widths.resize(row.size(), 0);
    for (std::size_t c = 0; c < row.size(); ++c)
      widths[c] = std::max(widths[c], row[c].size());
  }
  for (const auto& row : rows_) {
    std::string line = indent_;
    for (std::size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size())
        line += std::string(widths[c] - row[c].size() + 2, ' ');
    }
    std::cout << line << '\n';
  }
  std::cout.flush();
}

std::string local_time(std::int64_t unix_ms, const char* format) {
  const std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm local{};
  localtime_r(&seconds, &local);
  char text[64];
  std::strftime(text, sizeof(text), format, &local);
  return text;
}

std::string event_text(const VmEvent& event) {
  std::string line = "vm " + event.vm + ": " + std::string(to_string(event.state));
  if (event.reason)
    line += " (" + std::string(to_string(*event.reason)) + ")";
  if (!event.detail.empty())
    line += ": " + event.detail;
  return line;
}

}  // namespace crosvisor::cli
