// A reply read without building its document: one pass over the frame's text (a reader of its
// own for the canonical text crosvisord writes, else nlohmann's SAX parser) that keeps what a
// client needs to know about the reply (its id, "ok", the error) and writes one member's value as
// `dump(2)` would print it. For `vm list --json` of thousands of VMs, where a document costs an
// allocation per key and the command only prints. Pure logic.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "crosvisor/error.hpp"

namespace crosvisor::protocol {

struct ScannedReply {
  bool event = false;  // it has an "event" key: not a reply
  std::optional<std::uint64_t> id;
  std::optional<bool> ok;
  std::string error;  // "error" and "kind" of a refusal
  std::string kind;
  std::optional<std::string> member;  // the member asked for, printed with an indent of 2
};

// `frame` (one JSON object) scanned, printing the top-level member `member`; an error of kind
// protocol when the frame is not a JSON object.
Expected<ScannedReply> scan_reply(std::string_view frame, std::string_view member);

}  // namespace crosvisor::protocol
