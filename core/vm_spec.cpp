#include "crosvisor/vm_spec.hpp"

#include <unistd.h>

#include <algorithm>
#include <vector>

namespace crosvisor {

std::filesystem::path VmSpec::hand_over(int fd) {
  handed_fds.push_back(std::shared_ptr<const int>(new int(fd), [](const int* owned) {
    ::close(*owned);
    delete owned;
  }));
  return "/proc/self/fd/" + std::to_string(fd);
}

std::string VmSpec::shown(const std::filesystem::path& path) const {
  auto it = shown_paths.find(path.string());
  return it == shown_paths.end() ? path.string() : it->second;
}

std::string VmSpec::shown_in(std::string text) const {
  for (const auto& [handed, own] : shown_paths) {
    std::size_t from = 0;
    while ((from = text.find(handed, from)) != std::string::npos) {
      const std::size_t end = from + handed.size();
      if (end < text.size() && text[end] >= '0' && text[end] <= '9') {
        from = end;  // /proc/self/fd/1 inside /proc/self/fd/12
        continue;
      }
      text.replace(from, handed.size(), own);
      from += own.size();
    }
  }
  return text;
}

}  // namespace crosvisor
