#include "process/signals.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/resource.h>

#include "crosvisor/paths.hpp"

namespace crosvisor::process {

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

namespace {

constexpr const char* kOwnerLock = "owner.lock";

// Removes run-* directories whose owner lock nobody holds any more.
void remove_abandoned(const std::filesystem::path& base) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(base, ec)) {
    if (entry.path().filename().string().rfind("run-", 0) != 0)
      continue;
    UniqueFd lock(::open((entry.path() / kOwnerLock).c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
    if (!lock || ::flock(lock.get(), LOCK_EX | LOCK_NB) != 0)
      continue;  // alive, or not ours
    std::filesystem::remove_all(entry.path(), ec);
  }
}

}  // namespace

Expected<PrivateRuntimeDir> make_private_runtime_dir(const std::filesystem::path& chosen_base) {
  std::error_code ec;
  auto base = chosen_base;
  if (base.empty())
    base = user_runtime_dir().value_or(std::filesystem::temp_directory_path());
  std::filesystem::create_directories(base, ec);
  if (ec || access(base.c_str(), W_OK) != 0) {
    if (!chosen_base.empty()) {
      return make_error(ErrorKind::io,
                        "runtime directory " + base.string() + " cannot be created or written");
    }
    base = std::filesystem::temp_directory_path();
  }
  remove_abandoned(base);
  std::string pattern = (base / "run-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) {
    return std::unexpected(errno_error(ErrorKind::io, "mkdtemp " + pattern, errno));
  }
  const std::filesystem::path dir(pattern);
  // Lock first, then give the file its name: another process cleaning up abandoned directories
  // must never find an owner.lock that is not locked yet.
  const auto unnamed = dir / "owner.lock.new";
  UniqueFd lock(::open(unnamed.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock || ::flock(lock.get(), LOCK_EX | LOCK_NB) != 0 ||
      ::rename(unnamed.c_str(), (dir / kOwnerLock).c_str()) != 0) {
    const int saved = errno;
    std::filesystem::remove_all(dir, ec);
    return std::unexpected(
        errno_error(ErrorKind::io, "lock " + (dir / kOwnerLock).string(), saved));
  }
  return PrivateRuntimeDir{dir, std::move(lock)};
}

}  // namespace crosvisor::process
