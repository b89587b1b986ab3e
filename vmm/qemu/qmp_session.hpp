// One long-lived QMP session with a QEMU child, on the reactor's io_context: it connects as soon
// as the child is spawned (the socket was listening before the exec, so the connection waits in
// the backlog until QEMU serves it), negotiates capabilities, runs commands and reports the
// events that tell how the guest ended. Never blocks.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "core/unique_fd.hpp"
#include "crosvisor/error.hpp"
#include "process/line_splitter.hpp"
#include "vmm/vmm_control.hpp"

namespace boost::asio {
class io_context;
}

namespace crosvisor::vmm {

using ControlDone = std::function<void(Expected<void>)>;

class QmpSession : public std::enable_shared_from_this<QmpSession> {
 public:
  // `on_ready` runs once QEMU has answered the capabilities negotiation: it has parsed its
  // command line and set up its machine (a bad accelerator or device ends QEMU before that).
  QmpSession(boost::asio::io_context& io, std::function<void(lifecycle::GuestNotice)> on_notice,
             std::function<void()> on_ready);
  ~QmpSession();

  // Connects and starts reading. A failure is kept and reported to every later command.
  void open(const std::filesystem::path& socket);
  void execute(ControlRequest request, std::chrono::milliseconds timeout, ControlDone done);
  // Writes the guest's memory into `file` as an ELF core (dump-guest-memory, paging off: every
  // byte of guest RAM, which crash tools and gdb read). The file travels to QEMU over the socket
  // (getfd): QEMU never opens a path of ours. `done` once QEMU has written it all; a running
  // guest is paused meanwhile and goes on after.
  void dump_memory(UniqueFd file, std::chrono::milliseconds timeout, ControlDone done);
  // The child was reaped: read what QEMU wrote before it died (its last events), fail the
  // commands still waiting, and close.
  void finish();

 private:
  struct Impl;
  void open_session(const std::filesystem::path& socket);
  void read();
  // Sends one command line (with `fd` attached when >= 0) and waits for its answer.
  void send_command(std::string_view command, std::string_view arguments_json, int fd,
                    std::chrono::milliseconds timeout, ControlDone done);
  void deliver(std::string_view line);
  void fail_all(const std::string& why);
  std::unique_ptr<Impl> impl_;
};

}  // namespace crosvisor::vmm
