#include "support/processes.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/unique_fd.hpp"

namespace crosvisor::test {
namespace {

// A /proc file whole, or empty: a process may end while it is read (reading then fails with
// ESRCH, which an ifstream would throw from).
std::string proc_file(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  std::string text;
  if (!fd)
    return text;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buffer, sizeof(buffer));
    if (n <= 0)
      return n < 0 ? std::string() : text;
    text.append(buffer, static_cast<std::size_t>(n));
  }
}

// The pids in /proc now; one that goes while it is listed is simply missed.
std::vector<std::string> proc_pids() {
  std::vector<std::string> pids;
  std::error_code ec;
  for (std::filesystem::directory_iterator it("/proc", ec), end; !ec && it != end;
       it.increment(ec)) {
    auto name = it->path().filename().string();
    if (name.find_first_not_of("0123456789") == std::string::npos)
      pids.push_back(std::move(name));
  }
  return pids;
}

}  // namespace

std::set<int> open_fds(pid_t pid) {
  std::set<int> fds;
  for (const auto& entry :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    fds.insert(std::stoi(entry.path().filename().string()));
  }
  return fds;
}

std::string describe_fds(pid_t pid) {
  std::ostringstream out;
  for (const int fd : open_fds(pid)) {
    std::error_code ec;
    const auto target = std::filesystem::read_symlink(
        "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd), ec);
    out << fd << " -> " << (ec ? "?" : target.string()) << "\n";
  }
  return out.str();
}

bool process_alive(pid_t pid) {
  const std::string text = proc_file("/proc/" + std::to_string(pid) + "/stat");
  const auto close = text.rfind(')');
  return close != std::string::npos && close + 2 < text.size() && text[close + 2] != 'Z' &&
         text[close + 2] != 'X';
}

std::vector<pid_t> processes_with_cmdline(const std::string& needle) {
  std::vector<pid_t> pids;
  for (const auto& name : proc_pids()) {
    std::string cmdline = proc_file("/proc/" + name + "/cmdline");
    for (auto& c : cmdline) {
      if (c == '\0')
        c = ' ';
    }
    const pid_t pid = std::stoi(name);
    if (cmdline.find(needle) != std::string::npos && process_alive(pid))
      pids.push_back(pid);
  }
  return pids;
}

std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> pids;
  const std::string wanted = "PPid:\t" + std::to_string(parent);
  for (const auto& name : proc_pids()) {
    std::istringstream in(proc_file("/proc/" + name + "/status"));
    std::string line;
    while (std::getline(in, line)) {
      if (line == wanted) {
        pids.push_back(std::stoi(name));
        break;
      }
    }
  }
  return pids;
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
                std::chrono::milliseconds interval) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline)
      return condition();
    std::this_thread::sleep_for(interval);
  }
  return true;
}

}  // namespace crosvisor::test

namespace crosvisor::test {

CommandResult run_command(const std::string& command_line) {
  CommandResult result;
  FILE* pipe = popen((command_line + " 2>&1").c_str(), "r");
  if (pipe == nullptr)
    return result;
  char buffer[4096];
  std::size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0)
    result.output.append(buffer, n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

}  // namespace crosvisor::test
