// Bytes a client writes to the control socket, as crosvisord's session reads them: frames cut at
// arbitrary points (the first byte sets the read size), each frame parsed as a request, a create
// or fleet_up request's VM descriptions decoded (with no fds: each names one it does not have).
// A request the daemon accepts encodes back to one it parses to the same JSON.
#include <string>
#include <string_view>

#include "fuzz/fuzz_target.hpp"
#include "protocol/fleet_json.hpp"
#include "protocol/framing.hpp"
#include "protocol/requests.hpp"
#include "protocol/spec_json.hpp"

namespace {

using namespace crosvisor;

void check_request(std::string_view payload) {
  std::optional<std::uint64_t> id;
  auto request = protocol::parse_request(payload, id);
  if (!request) {
    fuzz::require(request.error().kind == ErrorKind::protocol,
                  "a refused request is a protocol error");
    return;
  }
  fuzz::require(id == request->id, "an accepted request's id is the one reported");
  const auto encoded = protocol::encode_request(request->id, request->body);
  std::optional<std::uint64_t> id_again;
  auto again = protocol::parse_request(protocol::dump(encoded), id_again);
  fuzz::require(again.has_value(), "an accepted request, encoded again, is accepted");
  fuzz::require(protocol::encode_request(again->id, again->body) == encoded,
                "an accepted request survives encoding unchanged");
  if (const auto* create = std::get_if<protocol::CreateRequest>(&request->body))
    (void)protocol::spec_from_message(create->vm, {});
  if (const auto* fleet = std::get_if<protocol::FleetUpRequest>(&request->body))
    (void)protocol::fleet_from_message(fleet->fleet, {});
}

int control_frames(const std::uint8_t* data, std::size_t size) {
  if (size < 1)
    return 0;
  const std::size_t read_size = data[0] + 1u;
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  protocol::FrameDecoder decoder;
  while (!rest.empty()) {
    decoder.feed(rest.substr(0, read_size));
    rest.remove_prefix(std::min(read_size, rest.size()));
    for (;;) {
      auto frame = decoder.next();
      if (!frame)
        return 0;  // the daemon closes the session: the stream cannot be trusted any more
      if (!*frame)
        break;
      check_request(**frame);
    }
  }
  return 0;
}

}  // namespace

CROSVISOR_FUZZ_TARGET("control_frames", control_frames)
