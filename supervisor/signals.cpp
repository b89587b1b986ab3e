#include "supervisor/signals.hpp"

#include <pthread.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "crosvisor/paths.hpp"

namespace crosvisor {

sigset_t block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

void raise_fd_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

Expected<std::filesystem::path> make_private_runtime_dir() {
  std::error_code ec;
  auto base = default_runtime_dir();
  std::filesystem::create_directories(base, ec);
  if (ec || access(base.c_str(), W_OK) != 0)
    base = std::filesystem::temp_directory_path();
  std::string pattern = (base / "run-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) {
    return std::unexpected(errno_error(ErrorKind::io, "mkdtemp " + pattern, errno));
  }
  return std::filesystem::path(pattern);
}

}  // namespace crosvisor
