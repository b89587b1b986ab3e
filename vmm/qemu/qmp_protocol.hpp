// QMP messages as the supervisor reads and writes them: one JSON object per line. Pure logic.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "vmm/vmm_control.hpp"

namespace crosvisor::vmm::qmp {

struct Message {
  enum class Kind { greeting, reply, event, invalid };
  Kind kind = Kind::invalid;
  std::optional<std::uint64_t> id;  // replies: the id our command carried
  std::string error;                // replies: QEMU's error description, empty on success
  std::string event;                // events: the name
  std::optional<lifecycle::GuestNotice> notice;  // events that tell how the guest ended
};

// Never throws: a line that is not a QMP message comes back as Kind::invalid.
Message parse(std::string_view line);

// `{"execute": command, "id": id}` and its line end; with `arguments_json` (a JSON object's
// text), `"arguments"` too.
std::string command_line(std::string_view command, std::uint64_t id,
                         std::string_view arguments_json = {});

// The QMP command for a request: system_powerdown or quit.
std::string_view command_for(ControlRequest request);

}  // namespace crosvisor::vmm::qmp
