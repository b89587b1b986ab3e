// Holds a connection to a Unix socket and sends nothing: a client that takes a session slot and
// sits on it. Prints "held" once connected (or why it could not), then waits to be killed.
//   socket_holder PATH
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: socket_holder PATH\n");
    return 2;
  }
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, argv[1], sizeof(address.sun_path) - 1);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    std::fprintf(stderr, "socket_holder: connect %s: %s\n", argv[1], std::strerror(errno));
    return 1;
  }
  std::printf("held\n");
  std::fflush(stdout);
  for (;;)
    pause();
}
