#include "bench/soak_account.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <sstream>

#include "process/cgroups.hpp"
#include "process/spawner.hpp"

namespace crosvisor::bench {

namespace fs = std::filesystem;

namespace {

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string link_of(const fs::path& path) {
  std::error_code ec;
  const auto target = fs::read_symlink(path, ec);
  return ec ? std::string() : target.string();
}

struct ProcessView {
  pid_t pid = 0;
  pid_t ppid = 0;
  char state = '?';
  std::string comm;
  std::string cmdline;  // NULs as spaces
};

std::vector<ProcessView> processes() {
  std::vector<ProcessView> all;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const auto name = entry.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit))
      continue;
    ProcessView view;
    view.pid = std::stoi(name);
    // /proc/PID/stat: "pid (comm) state ppid ...", comm may hold spaces and parentheses.
    const auto stat = read_all(entry.path() / "stat");
    const auto open = stat.find('(');
    const auto close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos || close + 4 > stat.size())
      continue;  // gone meanwhile
    view.comm = stat.substr(open + 1, close - open - 1);
    std::istringstream rest(stat.substr(close + 2));
    rest >> view.state >> view.ppid;
    view.cmdline = read_all(entry.path() / "cmdline");
    std::replace(view.cmdline.begin(), view.cmdline.end(), '\0', ' ');
    all.push_back(std::move(view));
  }
  return all;
}

std::vector<std::string> fd_targets(pid_t pid) {
  std::vector<std::string> targets;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec))
    targets.push_back(entry.path().filename().string() + " -> " + link_of(entry.path()));
  return targets;
}

// What an fd_targets() line names ("3 -> /path"), and the private runtime directory of the
// daemon whose fds they are: the one holding its owner.lock (process/signals.hpp).
std::string target_of(const std::string& fd) {
  return fd.substr(fd.find(" -> ") + 4);
}

std::string own_runtime_dir(const std::vector<std::string>& fds) {
  for (const auto& fd : fds)
    if (fd.ends_with("/owner.lock"))
      return fs::path(target_of(fd)).parent_path().filename().string();
  return {};
}

// Inodes of the abstract sockets "@crosvisor/cid/N" (vsock/cid_locks.hpp), by inode.
std::map<std::string, std::string> cid_lock_sockets() {
  std::map<std::string, std::string> by_inode;
  std::istringstream table(read_all("/proc/net/unix"));
  std::string line;
  std::getline(table, line);  // the header
  while (std::getline(table, line)) {
    // Num RefCount Protocol Flags Type St Inode [Path]
    std::istringstream fields(line);
    std::string skip, inode, path;
    for (int i = 0; i < 6; ++i)
      fields >> skip;
    fields >> inode >> path;
    if (path.starts_with("@crosvisor/cid/"))
      by_inode.emplace(inode, path);
  }
  return by_inode;
}

std::set<std::string> host_links() {
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator("/sys/class/net"))
    names.insert(entry.path().filename().string());
  return names;
}

std::set<std::string> entries_of(const fs::path& dir) {
  std::set<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    names.insert(entry.path().filename().string());
  return names;
}

// The lab's cgroup base directories (one per v1 hierarchy, one in v2), wherever crosvisord's
// own cgroup puts them.
std::vector<fs::path> cgroup_bases(const LabPaths& lab) {
  const auto name = process::cgroup_base_name(lab.state_dir);
  std::vector<fs::path> bases;
  std::error_code ec;
  fs::recursive_directory_iterator it("/sys/fs/cgroup",
                                      fs::directory_options::skip_permission_denied, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_directory(ec) || it->is_symlink(ec)) {
      it.disable_recursion_pending();
      continue;
    }
    if (it->path().filename() == name) {
      bases.push_back(it->path());
      it.disable_recursion_pending();
    } else if (it.depth() >= 3) {
      it.disable_recursion_pending();
    }
  }
  return bases;
}

}  // namespace

const std::vector<std::string>& resource_kinds() {
  static const std::vector<std::string> kinds{
      "processes",   "zombies", "dnsmasq", "daemon_fds", "cid_locks", "runtime_dirs",
      "state_files", "sockets", "netns",   "links",      "cgroups",   "vms"};
  return kinds;
}

std::string Account::to_string() const {
  std::string text;
  for (const auto& [kind, items] : left) {
    text += kind + ": " + std::to_string(items.size()) + "\n";
    for (const auto& item : items)
      text += "  " + item + "\n";
  }
  return text;
}

// The daemon's VMM spawner (process/spawner.hpp), started with its first VM, or -1.
pid_t spawner_of(pid_t daemon) {
  for (const auto& p : processes()) {
    if (p.ppid == daemon && p.state != 'Z' &&
        p.cmdline.find(process::kSpawnerFlag) != std::string::npos)
      return p.pid;
  }
  return -1;
}

// A daemon with a spawner holds two fds more than one without: its channel and pidfd.
constexpr std::size_t kSpawnerChannelFds = 2;

Baseline take_baseline(const LabPaths& lab, pid_t daemon) {
  Baseline baseline;
  baseline.daemon_fds = fd_targets(daemon).size();
  if (spawner_of(daemon) > 0)
    baseline.daemon_fds -= kSpawnerChannelFds;
  baseline.host_links = host_links();
  baseline.runtime_dirs = entries_of(lab.runtime_dir);
  baseline.runtime_dirs.erase(own_runtime_dir(fd_targets(daemon)));
  return baseline;
}

Account take_account(const LabPaths& lab, pid_t daemon, const Baseline& baseline) {
  Account account;
  const auto add = [&](const std::string& kind, std::string item) {
    account.left[kind].push_back(std::move(item));
  };
  const std::string lab_dir = lab.dir.string();
  const std::string host_net = link_of("/proc/self/ns/net");

  // Processes of the lab's: those whose command lines name its directory (VMMs, through the
  // kernel parameters every lab VM carries, dnsmasq, clients) and whatever crosvisord still has
  // as a child; and the daemon's children it has not reaped.
  // The daemon's VMM spawner (process/spawner.hpp), started with its first VM, is part of it:
  // not left behind, but it must hold nothing but its channel and standard streams.
  std::error_code ec;
  std::vector<pid_t> holders{daemon};
  const pid_t spawner = spawner_of(daemon);
  if (spawner > 0)
    holders.push_back(spawner);
  for (const auto& p : processes()) {
    if (p.pid == daemon || p.pid == spawner || p.pid == getpid())
      continue;
    if (p.state == 'Z' && p.ppid == daemon) {
      add("zombies", std::to_string(p.pid) + " " + p.comm);
    } else if (p.cmdline.find(lab_dir) != std::string::npos || p.ppid == daemon) {
      add(p.comm == "dnsmasq" ? "dnsmasq" : "processes",
          std::to_string(p.pid) + " (parent " + std::to_string(p.ppid) + ") " + p.cmdline);
      holders.push_back(p.pid);
    }
  }

  // The daemon's fds beyond its idle count, and the namespaces and CID reservations that the
  // daemon or a lab process holds.
  const auto daemon_fds = fd_targets(daemon);
  const std::size_t idle_fds = baseline.daemon_fds + (spawner > 0 ? kSpawnerChannelFds : 0);
  if (daemon_fds.size() > idle_fds) {
    add("daemon_fds",
        std::to_string(daemon_fds.size()) + " open, " + std::to_string(idle_fds) + " when idle");
    for (const auto& fd : daemon_fds)
      add("daemon_fds", fd);
  }
  if (spawner > 0) {
    constexpr std::size_t kSpawnerFds = 4;  // its standard streams and its channel
    const auto spawner_fds = fd_targets(spawner);
    if (spawner_fds.size() > kSpawnerFds) {
      add("daemon_fds", "its spawner " + std::to_string(spawner) + ": " +
                            std::to_string(spawner_fds.size()) + " open, " +
                            std::to_string(kSpawnerFds) + " when idle");
      for (const auto& fd : spawner_fds)
        add("daemon_fds", fd);
    }
  }
  const auto cid_sockets = cid_lock_sockets();
  std::set<std::string> namespaces;
  for (const pid_t pid : holders) {
    for (const auto& fd : fd_targets(pid)) {
      const auto target = target_of(fd);
      if (target.starts_with("socket:[")) {
        const auto inode = target.substr(8, target.size() - 9);
        if (const auto cid = cid_sockets.find(inode); cid != cid_sockets.end())
          add("cid_locks", cid->second + " held by " + std::to_string(pid));
      } else if (target.starts_with("net:[")) {
        namespaces.insert(target + " (fd of " + std::to_string(pid) + ")");
      }
    }
    const auto net = link_of("/proc/" + std::to_string(pid) + "/ns/net");
    if (!net.empty() && net != host_net)
      namespaces.insert(net + " (of " + std::to_string(pid) + ")");
  }
  for (const auto& ns : namespaces)
    add("netns", ns);

  for (const auto& link : host_links())
    if (!baseline.host_links.contains(link))
      add("links", link);

  // Files: VM run directories, state records, sockets anywhere in the lab but the control socket.
  // The daemon's own private directory (process/signals.hpp) is the one whose owner.lock it holds;
  // a restarted daemon makes a new one (and removes its predecessor's).
  const std::string own_dir = own_runtime_dir(daemon_fds);
  for (const auto& entry : entries_of(lab.runtime_dir))
    if (entry != own_dir && !baseline.runtime_dirs.contains(entry))
      add("runtime_dirs", (lab.runtime_dir / entry).string());
  for (const char* records : {"vms", "fleets", "networks", "run"}) {
    const auto dir = lab.state_dir / records;
    for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
      if (!it->is_directory(ec) || std::string(records) == "run")
        add("state_files", it->path().string());
  }
  for (fs::recursive_directory_iterator it(lab.dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_socket(ec) && it->path() != lab.socket)
      add("sockets", it->path().string());

  for (const auto& base : cgroup_bases(lab))
    for (const auto& entry : entries_of(base))
      if (fs::is_directory(base / entry, ec) && entry != "supervisor")
        add("cgroups", (base / entry).string());
  return account;
}

}  // namespace crosvisor::bench
