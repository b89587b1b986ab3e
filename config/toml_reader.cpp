#include "config/toml_reader.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

namespace crosvisor::config {

std::string ConfigProblem::to_string() const {
  std::ostringstream out;
  out << file << ':' << line << ':' << column << ": ";
  if (!key.empty())
    out << "key '" << key << "': ";
  out << message;
  return out.str();
}

void ProblemList::add(const toml::source_region& where, std::string key, std::string message) {
  problems_.push_back(ConfigProblem{file_, where.begin.line, where.begin.column, std::move(key),
                                    std::move(message)});
}

void ProblemList::add_unique(ConfigProblem problem) {
  problem.file = file_;
  if (std::find(problems_.begin(), problems_.end(), problem) == problems_.end())
    problems_.push_back(std::move(problem));
}

std::string ProblemList::to_string() const {
  auto sorted = problems_;
  std::stable_sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return std::tie(a.line, a.column) < std::tie(b.line, b.column);
  });
  std::string text;
  for (const auto& problem : sorted) {
    if (!text.empty())
      text += '\n';
    text += problem.to_string();
  }
  return text;
}

TableReader::TableReader(const toml::table& table, std::string key_prefix, ProblemList& problems,
                         std::filesystem::path base_dir)
    : table_(table),
      prefix_(std::move(key_prefix)),
      problems_(problems),
      base_dir_(std::move(base_dir)) {}

std::string TableReader::dotted(std::string_view key) const {
  if (key.empty())
    return prefix_;
  return prefix_.empty() ? std::string(key) : prefix_ + "." + std::string(key);
}

const toml::node* TableReader::find(std::string_view key) {
  known_.emplace_back(key);
  return table_.get(key);
}

static std::string_view type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
    case toml::node_type::time:
    case toml::node_type::date_time:
      return "a date or time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

void TableReader::wrong_type(std::string_view key, const toml::node& node,
                             std::string_view expected) {
  problems_.add(node.source(), dotted(key),
                "expected " + std::string(expected) + ", found " + std::string(type_name(node)));
}

std::optional<std::string> TableReader::string(std::string_view key, bool required) {
  const toml::node* node = find(key);
  if (node == nullptr) {
    if (required)
      problems_.add(table_.source(), dotted(key), "is required but missing");
    return std::nullopt;
  }
  if (auto value = node->value<std::string>(); value && node->is_string())
    return *value;
  wrong_type(key, *node, "a string");
  return std::nullopt;
}

std::optional<std::int64_t> TableReader::integer(std::string_view key, std::int64_t min,
                                                 std::int64_t max, bool required) {
  const toml::node* node = find(key);
  if (node == nullptr) {
    if (required)
      problems_.add(table_.source(), dotted(key), "is required but missing");
    return std::nullopt;
  }
  if (!node->is_integer()) {
    wrong_type(key, *node, "an integer");
    return std::nullopt;
  }
  const std::int64_t value = **node->as_integer();
  if (value < min || value > max) {
    problems_.add(node->source(), dotted(key),
                  "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                      ", found " + std::to_string(value));
    return std::nullopt;
  }
  return value;
}

std::optional<double> TableReader::seconds(std::string_view key, double min, double max) {
  const toml::node* node = find(key);
  if (node == nullptr)
    return std::nullopt;
  double value = 0;
  if (node->is_integer()) {
    value = static_cast<double>(**node->as_integer());
  } else if (node->is_floating_point()) {
    value = **node->as_floating_point();
  } else {
    wrong_type(key, *node, "a number of seconds");
    return std::nullopt;
  }
  if (!std::isfinite(value) || value < min || value > max) {
    std::ostringstream message;
    message << "must be between " << min << " and " << max << " seconds, found " << value;
    problems_.add(node->source(), dotted(key), message.str());
    return std::nullopt;
  }
  return value;
}

std::optional<std::filesystem::path> TableReader::path(std::string_view key, bool required) {
  auto text = string(key, required);
  if (!text)
    return std::nullopt;
  if (text->empty()) {
    problems_.add(table_.get(key)->source(), dotted(key), "must not be empty");
    return std::nullopt;
  }
  return resolve(*text);
}

std::filesystem::path TableReader::resolve(const std::filesystem::path& written) const {
  return (written.is_relative() ? base_dir_ / written : written).lexically_normal();
}

std::optional<std::string> TableReader::choice(std::string_view key,
                                               const std::vector<std::string_view>& choices) {
  auto text = string(key);
  if (!text)
    return std::nullopt;
  if (std::find(choices.begin(), choices.end(), *text) != choices.end())
    return text;
  std::string message = "must be one of";
  for (auto option : choices)
    message += std::string(" \"") + std::string(option) + "\"";
  message += ", found \"" + *text + "\"";
  problems_.add(table_.get(key)->source(), dotted(key), message);
  return std::nullopt;
}

const toml::table* TableReader::table(std::string_view key) {
  const toml::node* node = find(key);
  if (node == nullptr)
    return nullptr;
  if (const auto* sub = node->as_table())
    return sub;
  wrong_type(key, *node, "a table");
  return nullptr;
}

const toml::array* TableReader::array(std::string_view key) {
  const toml::node* node = find(key);
  if (node == nullptr)
    return nullptr;
  if (const auto* items = node->as_array())
    return items;
  wrong_type(key, *node, "an array");
  return nullptr;
}

std::vector<std::pair<std::size_t, const toml::table*>> TableReader::tables(std::string_view key) {
  std::vector<std::pair<std::size_t, const toml::table*>> result;
  const toml::node* node = find(key);
  if (node == nullptr)
    return result;
  const toml::array* array = node->as_array();
  if (array == nullptr) {
    wrong_type(key, *node, "an array of tables");
    return result;
  }
  for (std::size_t i = 0; i < array->size(); ++i) {
    const toml::node& element = *array->get(i);
    if (const auto* table = element.as_table()) {
      result.emplace_back(i, table);
    } else {
      problems_.add(element.source(), dotted(key) + "[" + std::to_string(i) + "]",
                    "expected a table, found " + std::string(type_name(element)));
    }
  }
  return result;
}

std::optional<bool> TableReader::boolean(std::string_view key) {
  const toml::node* node = find(key);
  if (node == nullptr)
    return std::nullopt;
  if (node->is_boolean())
    return **node->as_boolean();
  wrong_type(key, *node, "true or false");
  return std::nullopt;
}

void TableReader::finish() {
  for (const auto& [key, node] : table_) {
    const std::string_view name = key.str();
    if (std::find(known_.begin(), known_.end(), name) != known_.end())
      continue;
    std::string message = "unknown key";
    if (auto suggestion = closest_match(name, known_)) {
      message += "; did you mean '" + *suggestion + "'?";
    }
    problems_.add(key.source(), dotted(name), message);
  }
}

const toml::node* node_at(const toml::table& table, std::string_view path) {
  const toml::node* node = &table;
  while (!path.empty() && node != nullptr) {
    const auto end = path.find_first_of(".[");
    const std::string_view key = path.substr(0, end);
    if (!key.empty()) {
      const auto* as_table = node->as_table();
      node = as_table ? as_table->get(key) : nullptr;
    }
    path = end == std::string_view::npos ? std::string_view() : path.substr(end);
    while (!path.empty() && path.front() == '[' && node != nullptr) {
      const auto close = path.find(']');
      if (close == std::string_view::npos)
        return nullptr;
      std::size_t index = 0;
      for (char c : path.substr(1, close - 1))
        index = index * 10 + static_cast<std::size_t>(c - '0');
      const auto* as_array = node->as_array();
      node = as_array && index < as_array->size() ? as_array->get(index) : nullptr;
      path.remove_prefix(close + 1);
    }
    if (!path.empty() && path.front() == '.')
      path.remove_prefix(1);
  }
  return node;
}

static std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::optional<std::string> closest_match(std::string_view word,
                                         const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  std::size_t best_distance = 0;
  for (const auto& candidate : candidates) {
    const std::size_t distance = edit_distance(word, candidate);
    if (!best || distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  // A typo changes a few characters; beyond a third of the word it is another word.
  if (best && best_distance <= std::max<std::size_t>(2, word.size() / 3))
    return best;
  return std::nullopt;
}

KeyDepth deepest_key(std::string_view text) {
  KeyDepth deepest;
  std::uint32_t line = 1, column = 0, run = 1;
  std::uint32_t run_line = 1, run_column = 1;  // where the key being read starts
  bool key_started = false;
  enum class In { code, comment, basic, literal, multi_basic, multi_literal } in = In::code;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    ++column;
    if (c == '\n') {
      ++line;
      column = 0;
      if (in == In::comment || in == In::basic || in == In::literal)
        in = In::code;  // (an unterminated one-line string is the parser's to report)
    }
    const auto starts = [&](std::string_view what) { return text.substr(i, what.size()) == what; };
    switch (in) {
      case In::comment:
        continue;
      case In::basic:
        if (c == '\\')
          ++i;
        else if (c == '"')
          in = In::code;
        continue;
      case In::literal:
        if (c == '\'')
          in = In::code;
        continue;
      case In::multi_basic:
        if (c == '\\')
          ++i;
        else if (starts("\"\"\""))
          in = In::code, i += 2;
        continue;
      case In::multi_literal:
        if (starts("\'\'\'"))
          in = In::code, i += 2;
        continue;
      case In::code:
        break;
    }
    if (!key_started && c != ' ' && c != '\t' && c != '\n' && c != '\r') {
      key_started = true;
      run_line = line, run_column = column;
    }
    if (c == '#') {
      in = In::comment;
    } else if (starts("\"\"\"")) {
      in = In::multi_basic, i += 2;
    } else if (starts("\'\'\'")) {
      in = In::multi_literal, i += 2;
    } else if (c == '"') {
      in = In::basic;
    } else if (c == '\'') {
      in = In::literal;
    } else if (c == '.') {
      if (++run > deepest.parts)
        deepest = {run, run_line, run_column};
    } else if (c == '\n' || c == '=' || c == '[' || c == ']' || c == ',' || c == '{' || c == '}') {
      run = 1;
      key_started = false;
    }
  }
  return deepest;
}

std::expected<toml::table, std::string> parse_toml(std::string_view text,
                                                   const std::filesystem::path& source) {
  const std::string source_name = source.string();
  // toml++ builds a dotted key or table header of a hundred thousand parts by recursion, and
  // overflows its stack: such a key is refused before it is parsed.
  if (const auto deepest = deepest_key(text); deepest.parts > kMaxKeyParts) {
    return std::unexpected(source_name + ":" + std::to_string(deepest.line) + ":" +
                           std::to_string(deepest.column) + ": a key of " +
                           std::to_string(deepest.parts) + " dotted parts; at most " +
                           std::to_string(kMaxKeyParts) + " are accepted");
  }
  try {
    return toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    return std::unexpected(source_name + ":" + std::to_string(where.line) + ":" +
                           std::to_string(where.column) + ": " + std::string(e.description()));
  }
}

std::expected<std::string, std::string> read_text_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    return std::unexpected(path.string() + " is a directory, not a TOML file");
  // Limits a FIFO or a device named by mistake to what a description could be.
  constexpr std::uintmax_t kMaxFile = 16 << 20;
  if (const auto size = std::filesystem::file_size(path, ec); !ec && size > kMaxFile)
    return std::unexpected(path.string() + " is larger than 16 MiB: not a VM or fleet file");
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return std::unexpected("open " + path.string() + ": " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad())
    return std::unexpected("read " + path.string() + ": " + std::strerror(errno));
  return text.str();
}

}  // namespace crosvisor::config
