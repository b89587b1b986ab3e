#include "process/cgroups.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

namespace crosvisor::process {
namespace {

constexpr std::string_view kControllers[] = {"memory", "cpu", "pids"};
constexpr std::uint64_t kCpuPeriodUsec = 100'000;

std::vector<std::string> split(std::string_view text, char separator) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start <= text.size()) {
    const auto end = text.find(separator, start);
    const auto part = text.substr(start, end == std::string_view::npos ? end : end - start);
    if (!part.empty())
      parts.emplace_back(part);
    if (end == std::string_view::npos)
      break;
    start = end + 1;
  }
  return parts;
}

bool has(const std::vector<std::string>& list, std::string_view item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

std::optional<std::string> read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in)
    return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

Expected<void> write_text(const std::filesystem::path& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return std::unexpected(errno_error(ErrorKind::io, "write " + path.string(), errno));
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  const int error = errno;
  ::close(fd);
  if (!written)
    return std::unexpected(errno_error(ErrorKind::io, "write " + path.string(), error));
  return {};
}

std::optional<std::uint64_t> read_number(const std::filesystem::path& path) {
  auto text = read_text(path);
  if (!text)
    return std::nullopt;
  try {
    return std::stoull(*text);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// "key value" lines (memory.events, cpu.stat, memory.oom_control).
std::optional<std::uint64_t> read_keyed(const std::filesystem::path& path, std::string_view key) {
  auto text = read_text(path);
  if (!text)
    return std::nullopt;
  std::istringstream lines(*text);
  std::string name;
  std::uint64_t value = 0;
  while (lines >> name >> value) {
    if (name == key)
      return value;
  }
  return std::nullopt;
}

// Mount points of cgroup filesystems from mountinfo: cgroup2's, and each v1 hierarchy's with
// its controllers.
struct Mounts {
  std::optional<std::string> unified;
  std::vector<std::pair<std::string, std::vector<std::string>>> v1;
};

Mounts mounts_of(std::string_view mountinfo) {
  Mounts found;
  for (const auto& line : split(mountinfo, '\n')) {
    const auto fields = split(line, ' ');
    const auto dash = std::find(fields.begin(), fields.end(), "-");
    if (fields.size() < 5 || dash == fields.end() || std::distance(dash, fields.end()) < 4)
      continue;
    const std::string& type = *(dash + 1);
    const std::string& point = fields[4];
    if (type == "cgroup2")
      found.unified = point;
    else if (type == "cgroup")
      found.v1.emplace_back(point, split(*(dash + 3), ','));
  }
  return found;
}

}  // namespace

std::vector<std::string> VmCgroup::procs_files() const {
  std::vector<std::string> files;
  for (const auto& base : dirs_)
    files.push_back((base.dir / "cgroup.procs").string());
  return files;
}

CgroupUsage VmCgroup::usage() const {
  CgroupUsage usage;
  for (const auto& base : dirs_) {
    const auto& dir = base.dir;
    if (version_ == CgroupVersion::v2) {
      usage.cpu_usec = read_keyed(dir / "cpu.stat", "usage_usec");
      usage.memory_bytes = read_number(dir / "memory.current");
      usage.pids = read_number(dir / "pids.current");
      usage.oom_kills = read_keyed(dir / "memory.events", "oom_kill");
      usage.memory_limit_bytes = read_number(dir / "memory.max");  // "max": unlimited
      continue;
    }
    if (has(base.controllers, "memory")) {
      usage.memory_bytes = read_number(dir / "memory.usage_in_bytes");
      usage.oom_kills = read_keyed(dir / "memory.oom_control", "oom_kill");
      // v1 says "unlimited" with a number near 2^63.
      if (auto limit = read_number(dir / "memory.limit_in_bytes"); limit && *limit < (1ull << 62))
        usage.memory_limit_bytes = limit;
    }
    if (has(base.controllers, "cpuacct")) {
      if (auto ns = read_number(dir / "cpuacct.usage"))
        usage.cpu_usec = *ns / 1000;
    }
    if (has(base.controllers, "pids"))
      usage.pids = read_number(dir / "pids.current");
  }
  return usage;
}

void VmCgroup::kill_all() const {
  for (const auto& base : dirs_) {
    if (version_ == CgroupVersion::v2 && std::filesystem::exists(base.dir / "cgroup.kill") &&
        write_text(base.dir / "cgroup.kill", "1"))
      continue;
    if (auto procs = read_text(base.dir / "cgroup.procs")) {
      for (const auto& pid : split(*procs, '\n')) {
        try {
          ::kill(static_cast<pid_t>(std::stol(pid)), SIGKILL);
        } catch (const std::exception&) {
        }
      }
    }
  }
}

Expected<void> VmCgroup::remove() const {
  for (const auto& base : dirs_) {
    if (::rmdir(base.dir.c_str()) != 0 && errno != ENOENT)
      return std::unexpected(errno_error(ErrorKind::io, "remove " + base.dir.string(), errno));
  }
  return {};
}

Expected<CgroupHost> CgroupHost::find(std::string_view proc_self_cgroup, std::string_view mountinfo,
                                      const std::filesystem::path& fs_root,
                                      const std::string& name) {
  const Mounts mounts = mounts_of(mountinfo);
  const auto under_root = [&](const std::string& point, const std::string& path) {
    return fs_root / std::filesystem::path(point).relative_path() /
           std::filesystem::path(path).relative_path();
  };
  std::string why_not_v2 = "no cgroup2 mount";
  std::vector<std::pair<std::vector<std::string>, std::string>> v1_paths;
  for (const auto& line : split(proc_self_cgroup, '\n')) {
    const auto first = line.find(':');
    const auto second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos)
      continue;
    const std::string controllers = line.substr(first + 1, second - first - 1);
    const std::string path = line.substr(second + 1);
    if (line.substr(0, first) != "0" || !controllers.empty()) {
      v1_paths.emplace_back(split(controllers, ','), path);
      continue;
    }
    if (!mounts.unified)
      continue;
    const auto own = under_root(*mounts.unified, path);
    const auto offered = split(read_text(own / "cgroup.controllers").value_or(""), ' ');
    std::vector<std::string> missing;
    for (const auto controller : kControllers) {
      if (!has(offered, std::string(controller)))
        missing.emplace_back(controller);
    }
    if (missing.empty())
      return CgroupHost(CgroupVersion::v2, {{own / name, {"memory", "cpu", "pids"}}});
    why_not_v2 = "cgroup v2 (" + own.string() + ") offers no ";
    for (std::size_t i = 0; i < missing.size(); ++i)
      why_not_v2 += (i ? ", " : "") + missing[i];
    why_not_v2 += " controller (not delegated: systemd's Delegate=yes gives them)";
  }
  std::vector<CgroupBase> bases;
  for (const auto controller : kControllers) {
    const auto path = std::find_if(v1_paths.begin(), v1_paths.end(), [&](const auto& entry) {
      return has(entry.first, std::string(controller));
    });
    const auto mount = std::find_if(mounts.v1.begin(), mounts.v1.end(), [&](const auto& entry) {
      return has(entry.second, std::string(controller));
    });
    if (path == v1_paths.end() || mount == mounts.v1.end())
      return make_error(ErrorKind::unavailable,
                        why_not_v2 + "; no cgroup v1 hierarchy for " + std::string(controller));
    const auto dir = under_root(mount->first, path->second) / name;
    if (std::none_of(bases.begin(), bases.end(), [&](const CgroupBase& b) { return b.dir == dir; }))
      bases.push_back({dir, mount->second});
  }
  return CgroupHost(CgroupVersion::v1, std::move(bases));
}

std::string cgroup_base_name(const std::filesystem::path& state_dir) {
  return "crosvisor-" + std::to_string(std::hash<std::string>{}(state_dir.string()) % 1000000);
}

Expected<CgroupHost> CgroupHost::of_this_process(const std::string& name) {
  const auto cgroup = read_text("/proc/self/cgroup");
  const auto mountinfo = read_text("/proc/self/mountinfo");
  if (!cgroup || !mountinfo)
    return make_error(ErrorKind::unavailable, "no /proc/self/cgroup or mountinfo");
  auto host = find(*cgroup, *mountinfo, "/", name);
  if (!host)
    return host;
  // Usable only if its directories can be made here (a user's daemon may not).
  for (const auto& base : host->bases()) {
    std::error_code ec;
    std::filesystem::create_directories(base.dir, ec);
    if (ec)
      return make_error(ErrorKind::unavailable,
                        "cannot make " + base.dir.string() + ": " + ec.message());
  }
  if (host->version() == CgroupVersion::v2) {
    // Controllers for the VMs' cgroups: enabled below crosvisord's own cgroup, which may then
    // hold no process itself (cgroup v2's rule), so crosvisord moves itself, and only itself,
    // into a leaf it makes there, as systemd asks of a service with Delegate=yes.
    const auto own = host->bases().front().dir.parent_path();
    const auto leaf = own / "supervisor";
    std::error_code ec;
    std::filesystem::create_directories(leaf, ec);
    if (auto moved = write_text(leaf / "cgroup.procs", std::to_string(::getpid())); !moved)
      return make_error(ErrorKind::unavailable, moved.error().message);
    for (const auto& dir : {own, host->bases().front().dir}) {
      if (auto enabled = write_text(dir / "cgroup.subtree_control", "+memory +cpu +pids"); !enabled)
        return make_error(ErrorKind::unavailable, enabled.error().message);
    }
  }
  return host;
}

VmCgroup CgroupHost::existing(const std::string& vm) const {
  std::vector<CgroupBase> dirs;
  for (const auto& base : bases_)
    dirs.push_back({base.dir / vm, base.controllers});
  return VmCgroup(version_, std::move(dirs));
}

std::size_t CgroupHost::remove_empty() const {
  std::size_t removed = 0;
  for (const auto& base : bases_) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(base.dir, ec)) {
      if (entry.is_directory(ec) && ::rmdir(entry.path().c_str()) == 0)
        ++removed;
    }
  }
  return removed;
}

namespace {

// Whether a process in `cgroup` is the child of another live process running this program: a
// second crosvisord sharing the state directory's cgroups (started beside the first by mistake)
// still supervises it. A VMM whose daemon died has been reparented.
bool supervised_by_another(const VmCgroup& cgroup) {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  for (const auto& dir : cgroup.dirs()) {
    const auto procs = read_text(dir.dir / "cgroup.procs");
    if (!procs)
      continue;
    for (const auto& pid : split(*procs, '\n')) {
      const auto status = read_text("/proc/" + pid + "/status");
      if (!status)
        continue;
      const auto at = status->find("\nPPid:\t");
      if (at == std::string::npos)
        continue;
      const auto parent = std::stol(status->substr(at + 7));
      if (parent == ::getpid() || parent <= 1)
        continue;
      if (std::filesystem::read_symlink("/proc/" + std::to_string(parent) + "/exe", ec) == self &&
          !ec)
        return true;
    }
  }
  return false;
}

}  // namespace

std::size_t CgroupHost::remove_orphans(const std::set<std::string>& kept,
                                       std::chrono::milliseconds grace) const {
  std::set<std::string> orphans;
  for (const auto& base : bases_) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(base.dir, ec)) {
      const auto name = entry.path().filename().string();
      if (entry.is_directory(ec) && !kept.contains(name))
        orphans.insert(name);
    }
  }
  std::vector<VmCgroup> dying;
  for (const auto& name : orphans) {
    auto cgroup = existing(name);
    if (supervised_by_another(cgroup))
      continue;
    cgroup.kill_all();
    dying.push_back(std::move(cgroup));
  }
  // SIGKILL is not instant: a cgroup empties once its processes have exited.
  const auto deadline = std::chrono::steady_clock::now() + grace;
  std::size_t removed = 0;
  while (!dying.empty()) {
    std::erase_if(dying, [&](const VmCgroup& cgroup) {
      const bool gone = cgroup.remove().has_value();
      removed += gone;
      return gone;
    });
    if (dying.empty() || std::chrono::steady_clock::now() > deadline)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return removed;
}

std::size_t CgroupHost::sweep_stale(std::chrono::seconds age) const {
  const auto old_enough = [&](const std::filesystem::path& dir) {
    std::error_code ec;
    const auto changed = std::filesystem::last_write_time(dir, ec);
    return !ec && std::filesystem::file_time_type::clock::now() - changed > age;
  };
  const auto unpopulated = [](const std::filesystem::path& dir) {
    const auto procs = read_text(dir / "cgroup.procs");
    return procs && procs->find_first_not_of(" \n") == std::string::npos;
  };
  std::size_t removed = 0;
  for (const auto& base : bases_) {
    const std::string own = base.dir.filename().string();
    const std::string prefix = own.substr(0, own.rfind('-') + 1);
    std::error_code ec;
    for (const auto& sibling : std::filesystem::directory_iterator(base.dir.parent_path(), ec)) {
      const std::string name = sibling.path().filename().string();
      if (prefix.empty() || !name.starts_with(prefix) || !sibling.is_directory(ec))
        continue;
      for (const auto& vm : std::filesystem::directory_iterator(sibling.path(), ec)) {
        if (vm.is_directory(ec) && unpopulated(vm.path()) && old_enough(vm.path()) &&
            ::rmdir(vm.path().c_str()) == 0)
          ++removed;
      }
      if (name != own && old_enough(sibling.path()) && ::rmdir(sibling.path().c_str()) == 0)
        ++removed;
    }
  }
  return removed;
}

Expected<void> CgroupHost::ensure_base(const CgroupBase& base) const {
  std::error_code ec;
  if (std::filesystem::exists(base.dir, ec))
    return {};
  std::filesystem::create_directories(base.dir, ec);
  if (ec)
    return make_error(ErrorKind::io, "make " + base.dir.string() + ": " + ec.message());
  if (version_ == CgroupVersion::v2)
    return write_text(base.dir / "cgroup.subtree_control", "+memory +cpu +pids");
  return {};
}

void CgroupHost::remove_bases() const {
  for (const auto& base : bases_)
    ::rmdir(base.dir.c_str());
}

Expected<VmCgroup> CgroupHost::make(const std::string& vm, const CgroupLimits& limits) const {
  std::vector<CgroupBase> dirs;
  for (const auto& base : bases_) {
    if (auto ensured = ensure_base(base); !ensured)
      return std::unexpected(ensured.error());
    const auto dir = base.dir / vm;
    // One left by a daemon that was killed is empty (its VMM died with it): made again.
    ::rmdir(dir.c_str());
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec)
      return make_error(ErrorKind::io, "make cgroup " + dir.string() + ": " + ec.message());
    dirs.push_back({dir, base.controllers});
  }
  VmCgroup cgroup(version_, dirs);
  const auto set = [&](std::string_view controller, const std::string& v2_file,
                       const std::string& v1_file, const std::string& value) -> Expected<void> {
    for (const auto& base : dirs) {
      if (!has(base.controllers, std::string(controller)))
        continue;
      auto written =
          write_text(base.dir / (version_ == CgroupVersion::v2 ? v2_file : v1_file), value);
      if (!written)
        (void)cgroup.remove();
      return written;
    }
    (void)cgroup.remove();
    return make_error(ErrorKind::unavailable, "no " + std::string(controller) + " controller");
  };
  if (limits.memory_bytes) {
    if (auto done = set("memory", "memory.max", "memory.limit_in_bytes",
                        std::to_string(*limits.memory_bytes));
        !done)
      return std::unexpected(done.error());
    // Swap included: a VMM at its limit is OOM-killed, not swapped out (where the kernel
    // accounts swap at all: v2's memory.swap.max, v1's memsw with swapaccount).
    for (const auto& base : dirs) {
      if (!has(base.controllers, "memory"))
        continue;
      if (version_ == CgroupVersion::v2 && std::filesystem::exists(base.dir / "memory.swap.max"))
        (void)write_text(base.dir / "memory.swap.max", "0");
      if (version_ == CgroupVersion::v1 &&
          std::filesystem::exists(base.dir / "memory.memsw.limit_in_bytes"))
        (void)write_text(base.dir / "memory.memsw.limit_in_bytes",
                         std::to_string(*limits.memory_bytes));
    }
  }
  if (limits.cpu_percent) {
    const std::uint64_t quota = *limits.cpu_percent * kCpuPeriodUsec / 100;
    if (version_ == CgroupVersion::v1) {
      if (auto done = set("cpu", "", "cpu.cfs_period_us", std::to_string(kCpuPeriodUsec)); !done)
        return std::unexpected(done.error());
    }
    if (auto done = set("cpu", "cpu.max", "cpu.cfs_quota_us",
                        version_ == CgroupVersion::v2
                            ? std::to_string(quota) + " " + std::to_string(kCpuPeriodUsec)
                            : std::to_string(quota));
        !done)
      return std::unexpected(done.error());
  }
  if (limits.pids) {
    if (auto done = set("pids", "pids.max", "pids.max", std::to_string(*limits.pids)); !done)
      return std::unexpected(done.error());
  }
  return cgroup;
}

}  // namespace crosvisor::process
