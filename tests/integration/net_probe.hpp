// What the tests see of a VMM's network from outside it (a confined VMM may not ask itself).
#pragma once

#include <sys/types.h>

namespace crosvisor::test {

// The network namespace (its inode) of the one TAP process `pid` holds; 0 when it holds none,
// or more than one.
ino_t tap_namespace_of(pid_t pid);

}  // namespace crosvisor::test
