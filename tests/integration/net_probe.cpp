#include "integration/net_probe.hpp"

#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "core/unique_fd.hpp"
#include "net/namespace.hpp"
#include "process/pidfd.hpp"

namespace crosvisor::test {

ino_t tap_namespace_of(pid_t pid) {
  UniqueFd handle(pidfd_open(pid, 0));
  const auto taps = net::taps_held_by(pid, handle.get());
  if (taps.size() != 1)
    return 0;
  UniqueFd space(::ioctl(taps[0].get(), TUNGETDEVNETNS));
  struct stat info {};
  return space && ::fstat(space.get(), &info) == 0 ? info.st_ino : 0;
}

}  // namespace crosvisor::test
