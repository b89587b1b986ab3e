#include "lifecycle/console_tail.hpp"

#include "crosvisor/vm_event.hpp"

namespace crosvisor::lifecycle {
namespace {

// The part of `text` (whole lines, each ending in '\n') made of the lines that start within its
// last `budget` bytes; when none does, the end of the last line, `budget` bytes with its newline.
std::string_view last_lines_within(std::string_view text, std::size_t budget) {
  if (text.size() <= budget)
    return text;
  const std::size_t cut = text.size() - budget;
  if (text[cut - 1] == '\n')
    return text.substr(cut);
  const std::size_t newline = text.find('\n', cut);
  if (newline != std::string_view::npos && newline + 1 < text.size())
    return text.substr(newline + 1);
  return text.substr(cut);  // one endless line: its end
}

}  // namespace

void ConsoleTail::add_lines(std::string_view text) {
  if (text.empty())
    return;
  std::string ended;
  if (text.back() != '\n') {
    ended.assign(text).push_back('\n');
    text = ended;
  }
  if (text.size() >= 2 * max_bytes_)
    text_.assign(last_lines_within(text, max_bytes_));
  else
    text_.append(text);
  if (text_.size() > 2 * max_bytes_)
    text_.erase(0, text_.size() - last_lines_within(text_, max_bytes_).size());
}

std::string_view ConsoleTail::kept() const {
  std::string_view text = last_lines_within(text_, max_bytes_);
  // At most max_lines_ lines: from the start of the max_lines_-th line from the end.
  std::size_t lines = 0;
  for (std::size_t at = text.size(); at > 0; --at) {
    if (text[at - 1] == '\n' && at != text.size() && ++lines == max_lines_)
      return text.substr(at);
  }
  return text;
}

std::vector<std::string> ConsoleTail::last(std::size_t count) const {
  std::vector<std::string> lines;
  for_each_line(kept(), [&](std::string_view line) { lines.emplace_back(line); });
  if (count != 0 && lines.size() > count)
    lines.erase(lines.begin(), lines.end() - static_cast<std::ptrdiff_t>(count));
  return lines;
}

}  // namespace crosvisor::lifecycle
