// The user's terminal in raw mode, for an interactive console: every key goes to the guest as
// it is typed (Ctrl-C included), nothing is echoed locally. The modes it found are put back when
// it is destroyed, on every way out of the command that holds it.
#pragma once

#include <termios.h>

#include <optional>

namespace crosvisor::cli {

class RawTerminal {
 public:
  // Raw mode on `fd`; nothing when `fd` is not a terminal (input from a pipe or a file).
  static std::optional<RawTerminal> enter(int fd);
  ~RawTerminal();
  RawTerminal(RawTerminal&& other) noexcept;
  RawTerminal& operator=(RawTerminal&&) = delete;
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

 private:
  RawTerminal(int fd, const termios& saved) : fd_(fd), saved_(saved) {}
  int fd_ = -1;
  termios saved_{};
};

// The escape that leaves a console: Ctrl-] (0x1d), as virsh console and telnet have it.
inline constexpr char kConsoleEscape = 0x1d;

}  // namespace crosvisor::cli
