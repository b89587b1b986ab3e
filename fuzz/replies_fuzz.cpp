// What the `vm` command reads from crosvisord without building a document (protocol/
// reply_scan.hpp): for any bytes, the scan accepts exactly what nlohmann's parser accepts as an
// object, finds the same id, "ok" and event mark, and prints the member it was asked for as the
// same JSON; for a reply in canonical form (what crosvisord writes), as the very text that
// dump(2) of the document prints.
#include <nlohmann/json.hpp>
#include <string_view>

#include "fuzz/fuzz_target.hpp"
#include "protocol/framing.hpp"
#include "protocol/reply_scan.hpp"

namespace {

using namespace crosvisor;
using json = nlohmann::json;

int replies(const std::uint8_t* data, std::size_t size) {
  const std::string_view frame(reinterpret_cast<const char*>(data), size);
  const auto scanned = protocol::scan_reply(frame, "vms");
  const json document = json::parse(frame, nullptr, false);
  if (document.is_discarded() || !document.is_object()) {
    fuzz::require(!scanned.has_value(), "the scan refuses what is not a JSON object");
    if (!scanned)
      fuzz::require(scanned.error().kind == ErrorKind::protocol, "a refusal is a protocol error");
    return 0;
  }
  fuzz::require(scanned.has_value(), "the scan accepts a JSON object");
  fuzz::require(scanned->event == document.contains("event"), "an event is known as one");
  const auto id = document.find("id");
  const bool has_id = id != document.end() && id->is_number_integer() && *id >= 0;
  fuzz::require(scanned->id.has_value() == has_id, "the id is found");
  if (has_id)
    fuzz::require(*scanned->id == id->get<std::uint64_t>(), "the id is the reply's");
  const auto ok = document.find("ok");
  fuzz::require(scanned->ok.has_value() == (ok != document.end() && ok->is_boolean()),
                "\"ok\" is found");
  const auto member = document.find("vms");
  fuzz::require(scanned->member.has_value() == (member != document.end()), "the member is found");
  if (member == document.end())
    return 0;
  const json printed = json::parse(*scanned->member, nullptr, false);
  fuzz::require(!printed.is_discarded() && printed == *member, "the member printed is the same");
  if (protocol::dump(document) == frame)
    fuzz::require(*scanned->member == member->dump(2), "a canonical reply prints as dump(2)");
  return 0;
}

}  // namespace

CROSVISOR_FUZZ_TARGET("replies", replies)
