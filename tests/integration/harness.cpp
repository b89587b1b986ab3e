#include "integration/harness.hpp"

#include <catch2/catch.hpp>

#include "crosvisor/error_bridge.hpp"

namespace crosvisor::test {

Harness::~Harness() {
  client->send_exit(service, caf::exit_reason::user_shutdown);
}

VmHandle Harness::create(const VmSpec& spec) {
  auto vm = try_create(spec);
  if (!vm)
    FAIL(vm.error().message);
  return *vm;
}

Expected<VmHandle> Harness::try_create(const VmSpec& spec) {
  Expected<VmHandle> result = make_error(ErrorKind::io, "no answer");
  client
      ->request(service, caf::infinite, create_atom::value, spec,
                caf::actor_cast<caf::actor>(client))
      .receive([&](VmHandle created) { result = created; },
               [&](caf::error& error) { result = std::unexpected(from_caf_error(error)); });
  if (result)
    handles.push_back(*result);
  return result;
}

VmEvent Harness::next_event() {
  std::optional<VmEvent> event;
  while (!event) {
    bool timed_out = false;
    client->receive([&](const VmEvent& e) { event = e; },
                    [&](const ConsoleText& text) {
                      for_each_line(text.lines,
                                    [&](std::string_view line) { console.emplace_back(line); });
                    },
                    caf::after(kEventDeadline) >> [&] { timed_out = true; });
    if (timed_out) {
      std::string seen;
      for (const auto& line : console)
        seen += "\n  " + line;
      FAIL("no VM event within the deadline; console so far:" << seen);
    }
  }
  return *event;
}

VmEvent Harness::await_state(VmState state) {
  for (;;) {
    VmEvent event = next_event();
    if (event.state == state)
      return event;
    INFO("waiting for " << to_string(state) << ", got " << to_string(event.state) << " "
                        << event.detail);
    REQUIRE(event.state != VmState::dead);
  }
}

bool Harness::console_has(const std::string& text) const {
  return std::any_of(console.begin(), console.end(),
                     [&](const std::string& line) { return line.find(text) != std::string::npos; });
}

}  // namespace crosvisor::test
