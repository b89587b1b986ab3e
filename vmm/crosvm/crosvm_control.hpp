// crosvm's control socket: connect a SOCK_SEQPACKET socket, send one datagram with the
// serde_json encoding of a VmRequest, read one VmResponse. Unit variants encode as JSON strings
// ("Exit", "Powerbtn"); success is "Ok". Runs on the reactor's io_context and never blocks.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>

#include "crosvisor/error.hpp"
#include "vmm/qemu/qmp_session.hpp"
#include "vmm/vmm_control.hpp"

namespace boost::asio {
class io_context;
}

namespace crosvisor::vmm::crosvm {

// The datagram for a request: "Powerbtn" (ACPI power button) or "Exit" (crosvm stop).
std::string request_datagram(ControlRequest request);
// Success when crosvm answered "Ok"; otherwise an error carrying its answer.
Expected<void> check_response(std::string_view datagram);

void execute(boost::asio::io_context& io, const std::filesystem::path& socket,
             ControlRequest request, std::chrono::milliseconds timeout, ControlDone done);

}  // namespace crosvisor::vmm::crosvm
