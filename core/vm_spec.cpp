#include "crosvisor/vm_spec.hpp"

#include <unistd.h>

namespace crosvisor {

std::filesystem::path VmSpec::hand_over(int fd) {
  handed_fds.push_back(std::shared_ptr<const int>(new int(fd), [](const int* owned) {
    ::close(*owned);
    delete owned;
  }));
  return "/proc/self/fd/" + std::to_string(fd);
}

}  // namespace crosvisor
