#include "process/sandbox.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <set>

namespace crosvisor::process {

HostEntry host_entry(const std::filesystem::path& path) {
  struct stat status {};
  if (::lstat(path.c_str(), &status) != 0)
    return {};
  if (S_ISLNK(status.st_mode)) {
    char target[4096];
    const ssize_t n = ::readlink(path.c_str(), target, sizeof(target) - 1);
    if (n <= 0)
      return {};
    return {HostEntry::Type::symlink, std::string(target, static_cast<std::size_t>(n))};
  }
  if (S_ISDIR(status.st_mode))
    return {HostEntry::Type::directory, {}};
  if (S_ISCHR(status.st_mode) || S_ISBLK(status.st_mode))
    return {HostEntry::Type::device, {}};
  return {HostEntry::Type::file, {}};
}

std::vector<RootStep> plan_root(const Sandbox& sandbox, HostLookup lookup) {
  using Kind = RootStep::Kind;
  // A /tmp of its own first (what is shown under /tmp, such as a run directory, is made in it),
  // and a /proc of the VMM's own pid namespace.
  std::vector<RootStep> steps{{Kind::mount_root, {}, {}},
                              {Kind::make_dir, {}, "/tmp"},
                              {Kind::mount_tmp, {}, "/tmp"},
                              {Kind::make_dir, {}, "/proc"},
                              {Kind::mount_proc, {}, "/proc"}};
  std::set<std::string> made{"/", "/tmp", "/proc"};
  const auto make_parents = [&](const std::filesystem::path& path) {
    std::filesystem::path so_far = "/";
    for (const auto& part : path.parent_path().relative_path()) {
      so_far /= part;
      if (made.insert(so_far.string()).second)
        steps.push_back({Kind::make_dir, {}, so_far.string()});
    }
  };
  const auto show = [&](const std::filesystem::path& given, Kind bind) {
    const std::filesystem::path path = given.lexically_normal();
    if (!path.is_absolute() || made.count(path.string()) != 0)
      return;
    const HostEntry entry = lookup(path);
    if (entry.type == HostEntry::Type::missing)
      return;
    make_parents(path);
    made.insert(path.string());
    switch (entry.type) {
      case HostEntry::Type::symlink:
        steps.push_back({Kind::symlink, entry.link_target, path.string()});
        return;
      case HostEntry::Type::directory:
        steps.push_back({Kind::make_dir, {}, path.string()});
        break;
      case HostEntry::Type::file:
      case HostEntry::Type::device:
        steps.push_back({Kind::make_file, {}, path.string()});
        break;
      case HostEntry::Type::missing:
        return;
    }
    steps.push_back({bind, path.string(), path.string()});
  };
  for (const auto& path : sandbox.read_only)
    show(path, Kind::bind_read_only);
  for (const auto& path : sandbox.devices)
    show(path, Kind::bind_device);
  for (const auto& path : sandbox.writable)
    show(path, Kind::bind_writable);
  return steps;
}

std::vector<std::filesystem::path> default_read_only() {
  return {"/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32", "/etc/ld.so.cache"};
}

std::vector<std::filesystem::path> default_devices() {
  std::vector<std::filesystem::path> devices{"/dev/null", "/dev/zero", "/dev/full", "/dev/random",
                                             "/dev/urandom"};
  if (::access("/dev/kvm", F_OK) == 0)
    devices.emplace_back("/dev/kvm");
  return devices;
}

}  // namespace crosvisor::process
