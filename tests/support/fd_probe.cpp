// Stands in for a VMM binary when a test only wants to look at what a VMM inherits: it accepts
// any arguments, opens nothing, and waits to be killed, so /proc/<pid>/fd shows exactly the fds
// the supervisor planned.
#include <unistd.h>

int main() {
  for (;;)
    pause();
}
