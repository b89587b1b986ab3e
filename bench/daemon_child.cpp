#include "bench/daemon_child.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "core/unique_fd.hpp"

namespace crosvisor::bench {

using Clock = std::chrono::steady_clock;

std::filesystem::path beside(const char* name) {
  return std::filesystem::read_symlink("/proc/self/exe").parent_path() / name;
}

Child::Child(const std::filesystem::path& binary, std::vector<std::string> args,
             const std::filesystem::path& log, const std::string& netns) {
  process::LaunchRequest request;
  request.binary = netns.empty() ? binary : std::filesystem::path("/usr/bin/ip");
  request.args = std::move(args);
  if (!netns.empty())
    request.args.insert(request.args.begin(), {"netns", "exec", netns, binary.string()});
  request.max_open_files = 65536;
  request.fds.set(0, UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC)));
  request.fds.set(1,
                  UniqueFd(::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)));
  request.fds.set(2, UniqueFd(::open(log.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC)));
  auto spawned = process::spawn_child(request);
  if (!spawned)
    throw std::runtime_error(spawned.error().message);
  child = std::move(*spawned);
}

void Child::kill() {
  if (!alive)
    return;
  ::kill(child.pid, SIGKILL);
  ::waitpid(child.pid, nullptr, 0);
  alive = false;
}

// Runs a command (ip, etcdctl), or throws with its output.
std::string run(const std::string& command) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  std::string output;
  char buffer[4096];
  std::size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0)
    output.append(buffer, n);
  if (::pclose(pipe) != 0)
    throw std::runtime_error(command + ": " + output);
  return output;
}

// `vm ARGS` against the daemon at `socket` (a path: reached from any namespace).
std::string vm(const std::filesystem::path& socket, const std::string& args) {
  return run("CROSVISOR_SOCKET=" + socket.string() + " " + beside("vm").string() + " " + args);
}

// Seconds until `done` holds, polled every 100 ms (at most `limit`).
double seconds_until(const std::function<bool()>& done, std::chrono::seconds limit) {
  const auto start = Clock::now();
  while (!done()) {
    if (Clock::now() - start > limit)
      throw std::runtime_error("not done within " + std::to_string(limit.count()) + " s");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::vector<std::string> daemon_args(const Options& options, const std::filesystem::path& dir) {
  return {"--socket",      (dir / "control.sock").string(),
          "--runtime-dir", (dir / "run").string(),
          "--state-dir",   (dir / "state").string(),
          "--crosvm",      options.fake_crosvm.string(),
          "--log-level",   "error"};
}

std::filesystem::path stand_in_fleet(const Options& options, const std::string& fleet,
                                     const std::string& prefix, int count,
                                     const std::string& vm_keys) {
  std::filesystem::create_directories(options.work_dir);
  const auto kernel = options.work_dir / "kernel";
  { std::ofstream(kernel) << "not a kernel"; }
  const auto file = options.work_dir / (fleet + ".toml");
  std::ofstream out(file);
  out << "[fleet]\nname = \"" << fleet << "\"\nconcurrency = 64\n[defaults]\nvmm = \"crosvm\"\n"
      << "kernel = \"" << kernel.string() << "\"\nparams = \"console=ttyS0\"\n[[vm]]\nname = \""
      << prefix << "-{index}\"\ncount = " << count << "\n"
      << vm_keys;
  return file;
}

}  // namespace crosvisor::bench
