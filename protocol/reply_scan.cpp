#include "protocol/reply_scan.hpp"

#include <charconv>
#include <nlohmann/json.hpp>
#include <vector>

#include "protocol/json_text.hpp"

namespace crosvisor::protocol {
namespace {

using json = nlohmann::json;

// The SAX events of one frame. Depth 0 is outside the frame's object, 1 is among its members;
// the member asked for is printed from the event that begins its value to the one that ends it.
class Scanner : public nlohmann::json_sax<json> {
 public:
  Scanner(ScannedReply& reply, std::string_view member) : reply_(reply), member_(member) {}

  bool null() override { return scalar("null"); }
  bool boolean(bool value) override {
    if (at_top_member() && key_ == "ok")
      reply_.ok = value;
    return scalar(value ? "true" : "false");
  }
  bool number_integer(number_integer_t value) override {
    if (at_top_member() && key_ == "id" && value >= 0)
      reply_.id = static_cast<std::uint64_t>(value);
    return number(value);
  }
  bool number_unsigned(number_unsigned_t value) override {
    if (at_top_member() && key_ == "id")
      reply_.id = value;
    return number(value);
  }
  bool number_float(number_float_t value, const string_t&) override {
    if (depth_ == 0)
      return false;
    if (!printing())
      return true;
    before_value();
    out() += json(value).dump();
    return true;
  }
  bool string(string_t& value) override {
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
  bool binary(binary_t&) override { return false; }  // never in text
  bool start_object(std::size_t) override { return open('{'); }
  bool end_object() override { return close('}'); }
  bool start_array(std::size_t) override {
    if (depth_ == 0)
      return false;  // a frame is an object
    return open('[');
  }
  bool end_array() override { return close(']'); }
  bool key(string_t& name) override {
    if (depth_ == 1) {
      key_ = name;
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
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

 private:
  std::string& out() { return *reply_.member; }
  bool at_top_member() const { return depth_ == 1; }
  bool printing() const { return depth_ >= 1 && key_ == member_; }

  // Before a value: nothing for the member itself (a member named twice: the last one counts,
  // as in a document) or after a key, else a comma and a new line.
  void before_value() {
    if (depth_ == 1) {
      reply_.member.emplace();
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
  std::string key_;         // the top-level member being read
  bool after_key_ = false;  // the next value is a member's, on its key's line
  std::size_t depth_ = 0;
  std::vector<char> firsts_;  // per open container being printed: nothing in it yet
};

}  // namespace

Expected<ScannedReply> scan_reply(std::string_view frame, std::string_view member) {
  ScannedReply reply;
  Scanner scanner(reply, member);
  if (!json::sax_parse(frame.begin(), frame.end(), &scanner))
    return std::unexpected(
        Error{ErrorKind::protocol, "crosvisord sent something that is not JSON"});
  return reply;
}

}  // namespace crosvisor::protocol
