// Reads typed keys out of a TOML table while remembering where each came from, so that every
// problem is reported as "file:line:column: key: message". Errors are collected rather than
// thrown, so one pass over a file reports all of its mistakes at once.
#pragma once

#include <toml++/toml.h>

#include <cstdint>
#include <expected>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace crosvisor::config {

struct ConfigProblem {
  std::string file;
  std::uint32_t line = 0;
  std::uint32_t column = 0;
  std::string key;  // dotted path, e.g. "ready.console"
  std::string message;

  std::string to_string() const;
  friend bool operator==(const ConfigProblem&, const ConfigProblem&) = default;
};

// Collects the problems of one file.
class ProblemList {
 public:
  explicit ProblemList(std::string file) : file_(std::move(file)) {}
  void add(const toml::source_region& where, std::string key, std::string message);
  // Adds a problem found elsewhere (another list), unless the very same one is here already.
  void add_unique(ConfigProblem problem);
  bool empty() const { return problems_.empty(); }
  const std::vector<ConfigProblem>& all() const { return problems_; }
  const std::string& file() const { return file_; }
  // All problems, one per line, in file order.
  std::string to_string() const;

 private:
  std::string file_;
  std::vector<ConfigProblem> problems_;
};

// A view of one table. Each getter marks its key as known; finish() reports the unknown ones.
class TableReader {
 public:
  TableReader(const toml::table& table, std::string key_prefix, ProblemList& problems,
              std::filesystem::path base_dir);

  std::optional<std::string> string(std::string_view key, bool required = false);
  std::optional<std::int64_t> integer(std::string_view key, std::int64_t min, std::int64_t max,
                                      bool required = false);
  // A number of seconds, integer or fractional, within [min, max].
  std::optional<double> seconds(std::string_view key, double min, double max);
  // A string naming a path; relative paths resolve against the directory of the file.
  std::optional<std::filesystem::path> path(std::string_view key, bool required = false);
  // One of `choices`; anything else is a problem naming the choices.
  std::optional<std::string> choice(std::string_view key,
                                    const std::vector<std::string_view>& choices);
  // A sub-table, or nothing (a problem if the key holds something else).
  const toml::table* table(std::string_view key);
  // An array, or nothing (a problem if the key holds something else).
  const toml::array* array(std::string_view key);
  // The tables of an array of tables (inline or [[key]]) with their indices; any other element
  // is a problem naming its index.
  std::vector<std::pair<std::size_t, const toml::table*>> tables(std::string_view key);
  std::optional<bool> boolean(std::string_view key);

  // Reports every key that no getter asked for, with a suggestion among the known keys.
  void finish();

  // A path as written in the file, made absolute against the file's directory.
  std::filesystem::path resolve(const std::filesystem::path& written) const;

  const toml::table& raw() const { return table_; }
  const std::filesystem::path& base_dir() const { return base_dir_; }
  // "prefix.key" (just the prefix for an empty key).
  std::string dotted(std::string_view key) const;
  ProblemList& problems() { return problems_; }

 private:
  const toml::node* find(std::string_view key);
  void wrong_type(std::string_view key, const toml::node& node, std::string_view expected);

  const toml::table& table_;
  std::string prefix_;
  ProblemList& problems_;
  std::filesystem::path base_dir_;
  std::vector<std::string> known_;
};

// The key (or table header) with the most dotted parts in `text`, and where it starts; strings
// and comments are skipped. A float's "1.5" counts as two parts, which is far below any limit.
struct KeyDepth {
  std::uint32_t parts = 1;
  std::uint32_t line = 1;
  std::uint32_t column = 1;
};
KeyDepth deepest_key(std::string_view text);
inline constexpr std::uint32_t kMaxKeyParts = 32;

// `text` parsed as TOML from `source`; a syntax error names file, line and column. Keys of more
// than kMaxKeyParts parts are refused before parsing (toml++ recurses once per part).
std::expected<toml::table, std::string> parse_toml(std::string_view text,
                                                   const std::filesystem::path& source);
// The whole file at `path`, or the error that kept it from being read.
std::expected<std::string, std::string> read_text_file(const std::filesystem::path& path);

// The node a dotted key path names inside `table` ("ready.console", "disks[1].path"), if any.
const toml::node* node_at(const toml::table& table, std::string_view path);

// The known word closest to `word` by edit distance, if it is close enough to be a likely typo.
std::optional<std::string> closest_match(std::string_view word,
                                         const std::vector<std::string>& candidates);

}  // namespace crosvisor::config
