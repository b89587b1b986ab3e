// The last lines of a VM's console, kept in memory for `vm logs`: bounded both in lines and in
// bytes, so that a chatty guest costs the supervisor a fixed amount per VM. Kept as the text came
// (one copy of each block, no allocation per line: a chatty guest prints ten thousand lines a
// megabyte) and cut into lines only when asked. Pure logic.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace crosvisor::lifecycle {

class ConsoleTail {
 public:
  static constexpr std::size_t kDefaultMaxLines = 200;
  static constexpr std::size_t kDefaultMaxBytes = 16 * 1024;

  // At most `max_lines` lines, and only those within the last `max_bytes` bytes of the console
  // (their newlines counted); a line longer than that alone keeps its end.
  explicit ConsoleTail(std::size_t max_lines = kDefaultMaxLines,
                       std::size_t max_bytes = kDefaultMaxBytes)
      : max_lines_(max_lines), max_bytes_(max_bytes) {}

  // Whole lines as a console read brought them (crosvisor::ConsoleText), carriage returns and
  // all; a block without a final newline ends its last line.
  void add_lines(std::string_view text);
  void add(std::string_view line) { add_lines(std::string(line) + '\n'); }

  // The last `count` lines kept (all of them when count is 0), oldest first, without newlines
  // or carriage returns.
  std::vector<std::string> last(std::size_t count = 0) const;
  std::size_t size() const { return last().size(); }
  // The bytes of the lines kept, newlines and carriage returns included.
  std::size_t bytes() const { return kept().size(); }

 private:
  std::string_view kept() const;

  std::size_t max_lines_;
  std::size_t max_bytes_;
  // The console's last bytes, from a line's start; up to twice max_bytes_ before the front is
  // dropped, so that dropping costs one move per max_bytes_ appended.
  std::string text_;
};

}  // namespace crosvisor::lifecycle
