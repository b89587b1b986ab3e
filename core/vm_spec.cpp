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

std::optional<BootProblem> boot_problem(const VmSpec& spec) {
  const bool kernel = !spec.kernel.empty();
  const bool bootloader = spec.bootloader.has_value();
  if (!kernel && !bootloader)
    return BootProblem{"kernel", "a VM boots a kernel or a bootloader: give one of them"};
  if (kernel && bootloader)
    return BootProblem{"bootloader", "a VM boots a kernel or a bootloader, not both"};
  if (bootloader && spec.initrd)
    return BootProblem{"initrd", "only with a kernel: a bootloader loads its own"};
  if (bootloader && !spec.params.empty())
    return BootProblem{"params", "only with a kernel: a bootloader's kernel has its own command "
                                 "line (in a unified kernel image, its .cmdline)"};
  if (kernel && spec.nvram_template)
    return BootProblem{"nvram_template", "only with a bootloader"};
  if (spec.vmm == VmmKind::crosvm && spec.nvram_template)
    return BootProblem{"nvram_template",
                       "crosvm runs its bootloader with --bios and keeps no UEFI variables"};
  return std::nullopt;
}

std::optional<std::filesystem::path> sibling_nvram_template(
    const std::filesystem::path& bootloader) {
  std::string name = bootloader.filename().string();
  const auto code = name.find("CODE");
  if (code == std::string::npos)
    return std::nullopt;
  name.replace(code, 4, "VARS");
  return bootloader.parent_path() / name;
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
