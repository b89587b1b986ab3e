#include "protocol/json_text.hpp"

#include <charconv>
#include <nlohmann/json.hpp>

namespace crosvisor::protocol {
namespace {

// Whether `text` needs no escaping and is valid UTF-8 as it is: printable ASCII without quote or
// backslash. Names, states and paths nearly always are.
bool plain(std::string_view text) {
  for (const unsigned char c : text) {
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
      return false;
  }
  return true;
}

template <class Number>
void append_number(std::string& out, Number number) {
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof(digits), number).ptr;
  out.append(digits, end);
}

}  // namespace

void append_json_string(std::string& out, std::string_view text) {
  if (plain(text)) {
    out += '"';
    out += text;
    out += '"';
    return;
  }
  // The rare string with something to escape or validate: nlohmann's own serializer, so that
  // both ways of writing a reply agree byte for byte.
  out += nlohmann::json(std::string(text))
             .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void JsonText::separate() {
  if (after_value_)
    out_ += ',';
}

JsonText& JsonText::open(char bracket) {
  separate();
  out_ += bracket;
  after_value_ = false;
  return *this;
}

JsonText& JsonText::close(char bracket) {
  out_ += bracket;
  after_value_ = true;
  return *this;
}

JsonText& JsonText::key(std::string_view name) {
  separate();
  out_ += '"';
  out_ += name;
  out_ += "\":";
  after_value_ = false;
  return *this;
}

JsonText& JsonText::value(std::string_view text) {
  separate();
  append_json_string(out_, text);
  after_value_ = true;
  return *this;
}

JsonText& JsonText::value(bool flag) {
  separate();
  out_ += flag ? "true" : "false";
  after_value_ = true;
  return *this;
}

template <class Number>
JsonText& JsonText::number(Number number) {
  separate();
  append_number(out_, number);
  after_value_ = true;
  return *this;
}

JsonText& JsonText::value(std::int64_t number) {
  return this->number(number);
}

JsonText& JsonText::value(std::uint64_t number) {
  return this->number(number);
}

JsonText& JsonText::null() {
  separate();
  out_ += "null";
  after_value_ = true;
  return *this;
}

JsonText& JsonText::raw(std::string_view json) {
  separate();
  out_ += json;
  after_value_ = true;
  return *this;
}

}  // namespace crosvisor::protocol
