// JSON written straight into a string, without building a document first: for the replies that
// carry thousands of VMs, where a nlohmann document (a std::map and an allocation per key) costs
// more than the answer itself. The text is what nlohmann would print for the same document
// (compact, strings escaped alike, invalid UTF-8 as U+FFFD); keys are written in the order given,
// so a caller that wants nlohmann's order (sorted) writes them sorted. Pure logic.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace crosvisor::protocol {

class JsonText {
 public:
  explicit JsonText(std::string& out) : out_(out) {}

  JsonText& begin_object() { return open('{'); }
  JsonText& end_object() { return close('}'); }
  JsonText& begin_array() { return open('['); }
  JsonText& end_array() { return close(']'); }
  // An object's key (ours: plain ASCII, written as it is).
  JsonText& key(std::string_view name);

  JsonText& value(std::string_view text);
  JsonText& value(const char* text) { return value(std::string_view(text)); }
  JsonText& value(const std::string& text) { return value(std::string_view(text)); }
  JsonText& value(bool flag);
  JsonText& value(std::int64_t number);
  JsonText& value(std::uint64_t number);
  JsonText& value(std::int32_t number) { return value(static_cast<std::int64_t>(number)); }
  JsonText& value(std::uint32_t number) { return value(static_cast<std::uint64_t>(number)); }
  JsonText& value(std::uint16_t number) { return value(static_cast<std::uint64_t>(number)); }
  JsonText& null();
  template <class T>
  JsonText& value(const std::optional<T>& maybe) {
    return maybe ? value(*maybe) : null();
  }
  // A string, or null when it is empty.
  JsonText& text_or_null(std::string_view text) { return text.empty() ? null() : value(text); }
  // A value already written as JSON (by this class or by nlohmann).
  JsonText& raw(std::string_view json);

 private:
  JsonText& open(char bracket);
  JsonText& close(char bracket);
  template <class Number>
  JsonText& number(Number number);
  void separate();

  std::string& out_;
  bool after_value_ = false;  // the next value or key needs a comma before it
};

// `text` as a JSON string (quoted, escaped), appended to `out`.
void append_json_string(std::string& out, std::string_view text);

}  // namespace crosvisor::protocol
