// QMP lines from QEMU's monitor socket, as the supervisor reads them: parse() never throws, and a
// reply it accepts carries the id it read.
#include <string_view>

#include "fuzz/fuzz_target.hpp"
#include "vmm/qemu/qmp_protocol.hpp"

namespace {

int qmp(const std::uint8_t* data, std::size_t size) {
  using namespace crosvisor::vmm;
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  // QEMU's stream is lines; each is one message.
  while (!rest.empty()) {
    const auto end = rest.find('\n');
    const auto line = rest.substr(0, end);
    const auto message = qmp::parse(line);
    if (message.kind == qmp::Message::Kind::event)
      crosvisor::fuzz::require(!message.event.empty(), "a QMP event has a name");
    rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 1);
  }
  return 0;
}

}  // namespace

CROSVISOR_FUZZ_TARGET("qmp", qmp)
