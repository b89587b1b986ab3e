#include "cli/terminal.hpp"

#include <unistd.h>

#include <utility>

namespace crosvisor::cli {

std::optional<RawTerminal> RawTerminal::enter(int fd) {
  termios saved{};
  if (!::isatty(fd) || ::tcgetattr(fd, &saved) != 0)
    return std::nullopt;
  termios raw = saved;
  ::cfmakeraw(&raw);
  if (::tcsetattr(fd, TCSAFLUSH, &raw) != 0)
    return std::nullopt;
  return RawTerminal(fd, saved);
}

RawTerminal::RawTerminal(RawTerminal&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), saved_(other.saved_) {}

RawTerminal::~RawTerminal() {
  if (fd_ >= 0)
    ::tcsetattr(fd_, TCSAFLUSH, &saved_);
}

}  // namespace crosvisor::cli
