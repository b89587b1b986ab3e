#include "integration/daemon_process.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <fstream>

#include "core/unique_fd.hpp"

namespace crosvisor::test {

using namespace std::chrono_literals;

namespace {

bool accepts_connections(const std::filesystem::path& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
  return ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0;
}

}  // namespace

DaemonProcess::DaemonProcess(DaemonOptions options) {
  ::chmod(dir.path().c_str(), 0711);
  std::vector<std::string> argv;
  if (!options.environment.empty()) {
    argv.push_back("/usr/bin/env");
    argv.insert(argv.end(), options.environment.begin(), options.environment.end());
  }
  argv.insert(
      argv.end(),
      {CROSVISORD_BINARY, "--socket", socket.string(), "--crosvm", options.crosvm, "--state-dir",
       (options.state_dir.empty() ? dir / "state" : options.state_dir).string()});
  if (options.own_runtime_dir)
    argv.insert(argv.end(), {"--runtime-dir", (dir / "run").string()});
  if (options.quiet)
    argv.insert(argv.end(), {"--log-level", "warn"});
  argv.insert(argv.end(), options.args.begin(), options.args.end());
  process = std::make_unique<Subprocess>(argv);
  // Quiet, there is no "serving" line to wait for: the socket says when it listens.
  if (options.quiet)
    REQUIRE(eventually([&] { return accepts_connections(socket); }, 20s));
  else
    REQUIRE(process->wait_for_line("serving ", 20s));
}

std::vector<std::string> DaemonProcess::env() const {
  return {"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
          "CROSVISOR_SOCKET=" + socket.string()};
}

CommandResult DaemonProcess::vm(const std::string& args) const {
  return run_command("CROSVISOR_SOCKET=" + socket.string() + " " + VM_BINARY + " " + args +
                     " 2>&1");
}

std::size_t DaemonProcess::rss_kib() const {
  std::ifstream status("/proc/" + std::to_string(process->pid()) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0)
      return std::stoul(line.substr(6));
  }
  return 0;
}

}  // namespace crosvisor::test
