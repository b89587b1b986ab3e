// Stands in for a QEMU binary when a test only wants to look at what a VMM inherits: it accepts
// any arguments and opens nothing of its own. Like QEMU, it answers the QMP handshake on the
// listening socket it is handed (`-chardev socket,id=qmp,fd=N`): the supervisor counts a VMM as
// started only then. It then hangs up (QEMU would keep the session; a probe needs no commands)
// and waits to be killed, so /proc/<pid>/fd shows exactly the fds the supervisor planned.
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

namespace {

int qmp_listener(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.find("id=qmp") == std::string::npos)
      continue;
    const auto at = arg.find("fd=");
    if (at != std::string::npos)
      return std::atoi(arg.c_str() + at + 3);
  }
  return -1;
}

void write_text(int fd, const char* text) {
  [[maybe_unused]] auto n = ::write(fd, text, std::strlen(text));
}

}  // namespace

int main(int argc, char** argv) {
  if (const int listener = qmp_listener(argc, argv); listener >= 0) {
    const int session = ::accept(listener, nullptr, nullptr);
    if (session >= 0) {
      write_text(session, "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n");
      char command[256];
      [[maybe_unused]] auto n = ::read(session, command, sizeof(command));  // qmp_capabilities
      write_text(session, "{\"return\": {}}\r\n");
      ::close(session);
    }
  }
  for (;;)
    pause();
}
