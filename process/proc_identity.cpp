#include "process/proc_identity.hpp"

#include <fcntl.h>
#include <poll.h>

#include <charconv>
#include <fstream>
#include <sstream>

#include "process/pidfd.hpp"

namespace crosvisor::process {
namespace {

Expected<std::string> read_proc(pid_t pid, const char* what) {
  const std::string path = "/proc/" + std::to_string(pid) + "/" + what;
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return make_error(ErrorKind::not_found, "no process " + std::to_string(pid));
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

// Ended, not reaped yet by its parent: its command line is gone already.
bool is_zombie(pid_t pid) {
  auto stat = read_proc(pid, "stat");
  if (!stat)
    return true;
  const auto close = stat->rfind(')');
  return close == std::string::npos || close + 2 >= stat->size() || (*stat)[close + 2] == 'Z' ||
         (*stat)[close + 2] == 'X';
}

}  // namespace

std::string boot_id() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(in, id);
  return id;
}

Expected<std::uint64_t> process_start_time(pid_t pid) {
  auto stat = read_proc(pid, "stat");
  if (!stat)
    return std::unexpected(stat.error());
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so count fields from the
  // last ')'. starttime is field 22, the 20th after comm.
  const auto close = stat->rfind(')');
  if (close == std::string::npos)
    return make_error(ErrorKind::io, "/proc/" + std::to_string(pid) + "/stat is unreadable");
  std::istringstream fields(stat->substr(close + 1));
  std::string field;
  for (int i = 0; i < 20 && fields >> field; ++i) {
  }
  std::uint64_t start = 0;
  const auto [end, error] = std::from_chars(field.data(), field.data() + field.size(), start);
  if (error != std::errc() || end != field.data() + field.size())
    return make_error(ErrorKind::io, "/proc/" + std::to_string(pid) + "/stat is unreadable");
  return start;
}

Expected<std::vector<std::string>> process_args(pid_t pid) {
  auto cmdline = read_proc(pid, "cmdline");
  if (!cmdline)
    return std::unexpected(cmdline.error());
  std::vector<std::string> args;
  std::size_t begin = 0;
  while (begin < cmdline->size()) {
    const auto end = cmdline->find('\0', begin);
    args.push_back(cmdline->substr(begin, end - begin));
    if (end == std::string::npos)
      break;
    begin = end + 1;
  }
  if (!args.empty())
    args.erase(args.begin());  // argv[0]: how it was started, not what it is
  return args;
}

Expected<ProcessIdentity> identify(pid_t pid) {
  auto start = process_start_time(pid);
  if (!start)
    return std::unexpected(start.error());
  auto args = process_args(pid);
  if (!args)
    return std::unexpected(args.error());
  return ProcessIdentity{pid, *start, std::move(*args)};
}

Expected<UniqueFd> open_same_process(const ProcessIdentity& expected) {
  const std::string who = "pid " + std::to_string(expected.pid);
  if (expected.pid <= 0)
    return make_error(ErrorKind::not_found, "no pid recorded");
  UniqueFd pidfd(pidfd_open(expected.pid, 0));
  if (!pidfd)
    return make_error(ErrorKind::not_found, who + " no longer runs");
  auto now = identify(expected.pid);
  if (!now || is_zombie(expected.pid))
    return make_error(ErrorKind::not_found, who + " no longer runs");
  if (now->start_time != expected.start_time)
    return make_error(ErrorKind::not_found, who + " is another process now (it started at tick " +
                                                std::to_string(now->start_time) +
                                                ", the recorded one at " +
                                                std::to_string(expected.start_time) + ")");
  if (now->args != expected.args)
    return make_error(ErrorKind::not_found, who + " is another process now (other arguments)");
  // Still the same one after the checks: a process that ended in between has a readable pidfd.
  pollfd ended{pidfd.get(), POLLIN, 0};
  if (::poll(&ended, 1, 0) > 0)
    return make_error(ErrorKind::not_found, who + " no longer runs");
  return pidfd;
}

}  // namespace crosvisor::process
