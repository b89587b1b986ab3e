#include "protocol/reply_scan.hpp"

#include <charconv>
#include <nlohmann/json.hpp>
#include <vector>

#include "protocol/json_text.hpp"

namespace crosvisor::protocol {
namespace {

using json = nlohmann::json;

// What a frame's events do, whoever reads its text: keep what a client needs to know of the
// reply, and print one member. Depth 0 is outside the frame's object, 1 is among its members;
// the member asked for is printed from the event that begins its value to the one that ends it.
// Each returns false for what is not a reply (a frame is one JSON object).
class Printer {
 public:
  Printer(ScannedReply& reply, std::string_view member, std::size_t frame_size)
      : reply_(reply), member_(member), frame_size_(frame_size) {}

  bool null() { return scalar("null"); }
  bool boolean(bool value) {
    if (at_top_member() && key_ == "ok")
      reply_.ok = value;
    return scalar(value ? "true" : "false");
  }
  bool number_integer(std::int64_t value) {
    if (at_top_member() && key_ == "id" && value >= 0)
      reply_.id = static_cast<std::uint64_t>(value);
    return number(value);
  }
  bool number_unsigned(std::uint64_t value) {
    if (at_top_member() && key_ == "id")
      reply_.id = value;
    return number(value);
  }
  bool number_float(double value) {
    if (depth_ == 0)
      return false;
    if (!printing())
      return true;
    before_value();
    out() += json(value).dump();
    return true;
  }
  bool string(std::string_view value) {
    if (at_top_member() && key_ == "error")
      reply_.error = value;
    else if (at_top_member() && key_ == "kind")
      reply_.kind = value;
    if (depth_ == 0)
      return false;
    if (!printing())
      return true;
    before_value();
    append_json_string(out(), value);
    return true;
  }
  bool start_object() { return open('{'); }
  bool end_object() { return close('}'); }
  bool start_array() {
    if (depth_ == 0)
      return false;  // a frame is an object
    return open('[');
  }
  bool end_array() { return close(']'); }
  bool key(std::string_view name) {
    if (depth_ == 1) {
      key_ = name;
      in_member_ = name == member_;
      // A key named twice: the last value counts, as in a document (whatever its type).
      if (name == "event")
        reply_.event = true;
      else if (name == "id")
        reply_.id.reset();
      else if (name == "ok")
        reply_.ok.reset();
      else if (name == "error")
        reply_.error.clear();
      else if (name == "kind")
        reply_.kind.clear();
      return true;
    }
    if (!printing())
      return true;
    separate();
    append_json_string(out(), name);
    out() += ": ";
    after_key_ = true;
    return true;
  }

 private:
  std::string& out() { return *reply_.member; }
  bool at_top_member() const { return depth_ == 1; }
  bool printing() const { return depth_ >= 1 && in_member_; }

  // Before a value: nothing for the member itself (a member named twice: the last one counts,
  // as in a document) or after a key, else a comma and a new line.
  void before_value() {
    if (depth_ == 1) {
      reply_.member.emplace();
      // Printed with indents it grows by about half (a list of VMs): one allocation, not twenty.
      out().reserve(frame_size_ + frame_size_ / 2);
      return;
    }
    if (after_key_) {
      after_key_ = false;
      return;
    }
    separate();
  }
  void separate() {
    char& first = firsts_.back();
    if (!first)
      out() += ',';
    first = false;
    out() += '\n';
    out().append(2 * (depth_ - 1), ' ');
  }
  bool scalar(std::string_view text) {
    if (depth_ == 0)
      return false;  // a frame is an object
    if (printing()) {
      before_value();
      out() += text;
    }
    return true;
  }
  template <class Number>
  bool number(Number value) {
    if (depth_ == 0)
      return false;
    if (!printing())
      return true;
    before_value();
    char digits[24];
    out().append(digits, std::to_chars(digits, digits + sizeof(digits), value).ptr);
    return true;
  }
  bool open(char bracket) {
    if (depth_ >= 1 && printing()) {
      before_value();
      out() += bracket;
      firsts_.push_back(true);
    }
    ++depth_;
    return true;
  }
  bool close(char bracket) {
    --depth_;
    if (depth_ >= 1 && printing()) {
      const bool empty = firsts_.back();
      firsts_.pop_back();
      if (!empty) {
        out() += '\n';
        out().append(2 * (depth_ - 1), ' ');
      }
      out() += bracket;
    }
    return true;
  }

  ScannedReply& reply_;
  std::string_view member_;
  std::size_t frame_size_;
  std::string key_;         // the top-level member being read
  bool in_member_ = false;  // ... and it is the member asked for
  bool after_key_ = false;  // the next value is a member's, on its key's line
  std::size_t depth_ = 0;
  std::vector<char> firsts_;  // per open container being printed: nothing in it yet
};

// Any frame, read by nlohmann's SAX parser.
class Scanner : public nlohmann::json_sax<json> {
 public:
  explicit Scanner(Printer& printer) : printer_(printer) {}

  bool null() override { return printer_.null(); }
  bool boolean(bool value) override { return printer_.boolean(value); }
  bool number_integer(number_integer_t value) override { return printer_.number_integer(value); }
  bool number_unsigned(number_unsigned_t value) override { return printer_.number_unsigned(value); }
  bool number_float(number_float_t value, const string_t&) override {
    return printer_.number_float(value);
  }
  bool string(string_t& value) override { return printer_.string(value); }
  bool binary(binary_t&) override { return false; }  // never in text
  bool start_object(std::size_t) override { return printer_.start_object(); }
  bool end_object() override { return printer_.end_object(); }
  bool start_array(std::size_t) override { return printer_.start_array(); }
  bool end_array() override { return printer_.end_array(); }
  bool key(string_t& name) override { return printer_.key(name); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

 private:
  Printer& printer_;
};

// The frames crosvisord writes, read without nlohmann's lexer (a third of a long list's time):
// strings of printable ASCII with nothing escaped, and integers. Anything else (an escape, UTF-8,
// a fraction, a syntax error) is left to nlohmann's parser: false, and the frame is read
// again from the start, so every frame is read exactly as that parser reads it.
class CanonicalReader {
 public:
  CanonicalReader(std::string_view text, Printer& printer)
      : at_(text.data()), end_(text.data() + text.size()), printer_(printer) {}

  bool read() {
    enum class Next { value, key, comma_or_close };
    Next next = Next::value;
    for (;;) {
      skip_space();
      if (at_ == end_)
        return false;
      if (next == Next::key) {
        std::string_view name;
        if (!string(name) || !printer_.key(name))
          return false;
        skip_space();
        if (at_ == end_ || *at_++ != ':')
          return false;
        next = Next::value;
        continue;
      }
      if (next == Next::comma_or_close) {
        const char c = *at_++;
        if (c == ',') {
          next = open_.back() == '{' ? Next::key : Next::value;
          continue;
        }
        if (!close(c))
          return false;
      } else if (*at_ == '{' || *at_ == '[') {
        const char bracket = *at_++;
        if (!(bracket == '{' ? printer_.start_object() : printer_.start_array()))
          return false;
        open_.push_back(bracket);
        skip_space();
        if (at_ != end_ && (*at_ == '}' || *at_ == ']')) {
          if (!close(*at_++))
            return false;
        } else {
          next = bracket == '{' ? Next::key : Next::value;
          continue;
        }
      } else if (!scalar()) {
        return false;
      }
      // After a whole value: the next member or element, or the end of the frame.
      if (open_.empty()) {
        skip_space();
        return at_ == end_;
      }
      next = Next::comma_or_close;
    }
  }

 private:
  void skip_space() {
    while (at_ != end_ && (*at_ == ' ' || *at_ == '\n' || *at_ == '\r' || *at_ == '\t'))
      ++at_;
  }
  bool close(char bracket) {
    if (open_.empty() || bracket != (open_.back() == '{' ? '}' : ']'))
      return false;
    open_.pop_back();
    return bracket == '}' ? printer_.end_object() : printer_.end_array();
  }
  bool string(std::string_view& text) {
    if (*at_ != '"')
      return false;
    const char* first = ++at_;
    while (at_ != end_ && *at_ != '"') {
      const auto c = static_cast<unsigned char>(*at_);
      if (c < 0x20 || c > 0x7e || c == '\\')
        return false;
      ++at_;
    }
    if (at_ == end_)
      return false;
    text = std::string_view(first, static_cast<std::size_t>(at_ - first));
    ++at_;
    return true;
  }
  bool literal(std::string_view word) {
    if (static_cast<std::size_t>(end_ - at_) < word.size() ||
        std::string_view(at_, word.size()) != word)
      return false;
    at_ += word.size();
    return true;
  }
  bool scalar() {
    switch (*at_) {
      case '"': {
        std::string_view text;
        return string(text) && printer_.string(text);
      }
      case 't':
        return literal("true") && printer_.boolean(true);
      case 'f':
        return literal("false") && printer_.boolean(false);
      case 'n':
        return literal("null") && printer_.null();
      default:
        return integer();
    }
  }
  bool integer() {
    const char* first = at_;
    const bool negative = *at_ == '-';
    const char* digits = negative ? at_ + 1 : at_;
    const char* last = digits;
    while (last != end_ && *last >= '0' && *last <= '9')
      ++last;
    // JSON has no leading zeros; what has a fraction or an exponent is nlohmann's to read.
    if (last == digits || (*digits == '0' && last - digits > 1))
      return false;
    if (last != end_ && (*last == '.' || *last == 'e' || *last == 'E'))
      return false;
    at_ = last;
    if (negative) {
      std::int64_t value = 0;
      const auto [end, error] = std::from_chars(first, last, value);
      return error == std::errc() && end == last && printer_.number_integer(value);
    }
    std::uint64_t value = 0;
    const auto [end, error] = std::from_chars(first, last, value);
    return error == std::errc() && end == last && printer_.number_unsigned(value);
  }

  const char* at_;
  const char* end_;
  Printer& printer_;
  std::vector<char> open_;  // the brackets open, innermost last
};

}  // namespace

Expected<ScannedReply> scan_reply(std::string_view frame, std::string_view member) {
  {
    ScannedReply reply;
    Printer printer(reply, member, frame.size());
    if (CanonicalReader(frame, printer).read())
      return reply;
  }
  ScannedReply reply;
  Printer printer(reply, member, frame.size());
  Scanner scanner(printer);
  if (!json::sax_parse(frame.begin(), frame.end(), &scanner))
    return std::unexpected(
        Error{ErrorKind::protocol, "crosvisord sent something that is not JSON"});
  return reply;
}

}  // namespace crosvisor::protocol
