#include "integration/on_demand.hpp"

#include <signal.h>

#include "support/processes.hpp"

namespace crosvisor::test {

OnDemandSocket::~OnDemandSocket() {
  for (const pid_t pid : daemons())
    ::kill(pid, SIGTERM);
  if (!eventually([&] { return daemons().empty(); }, std::chrono::seconds(20))) {
    for (const pid_t pid : daemons())
      ::kill(pid, SIGKILL);
  }
}

std::vector<std::string> OnDemandSocket::env(const std::vector<std::string>& extra) const {
  std::vector<std::string> entries{"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
                                   "CROSVISOR_SOCKET=" + socket.string(),
                                   "CROSVISOR_STATE_DIR=" + (dir / "state").string()};
  entries.insert(entries.end(), extra.begin(), extra.end());
  return entries;
}

CommandResult OnDemandSocket::vm(const std::string& args) const {
  return run_command("CROSVISOR_SOCKET=" + socket.string() + " CROSVISOR_STATE_DIR=" +
                     (dir / "state").string() + " " + VM_BINARY + " " + args + " 2>&1");
}

std::vector<pid_t> OnDemandSocket::daemons() const {
  return processes_with_cmdline("crosvisord --socket " + socket.string() + " ");
}

}  // namespace crosvisor::test
