#include "cluster/fence_keeper.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <new>

namespace crosvisor::cluster {
namespace {

std::int64_t monotonic_ns() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<std::int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

// Field 22 of /proc/PID/stat, read with plain system calls (the keeper is a forked child of a
// threaded process: nothing that may take a lock another thread held at the fork).
std::uint64_t start_time_of(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/%d/stat", static_cast<int>(pid));
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  char text[1024];
  const ssize_t n = ::read(fd, text, sizeof(text) - 1);
  ::close(fd);
  if (n <= 0)
    return 0;
  text[n] = '\0';
  const char* at = std::strrchr(text, ')');
  if (at == nullptr)
    return 0;
  // After ") ": field 3 is the state; the start time is field 22.
  int field = 2;
  for (const char* c = at + 1; *c != '\0'; ++c) {
    if (*c == ' ' && ++field == 22)
      return std::strtoull(c + 1, nullptr, 10);
  }
  return 0;
}

}  // namespace

struct FenceKeeper::Shared {
  std::atomic<std::int64_t> deadline_ns{0};  // CLOCK_MONOTONIC; 0: none
  std::atomic<std::uint64_t> kills{0};
  struct Slot {
    std::atomic<std::int32_t> pid{0};  // 0: free
    std::atomic<std::uint64_t> start_time{0};
  };
  Slot slots[kSlots];
};

Expected<FenceKeeper> FenceKeeper::start() {
  void* memory =
      ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED)
    return std::unexpected(errno_error(ErrorKind::io, "fence keeper: mmap", errno));
  auto* shared = new (memory) Shared();
  const pid_t parent = ::getpid();
  const pid_t child = ::fork();
  if (child < 0) {
    const int saved = errno;
    ::munmap(memory, sizeof(Shared));
    return std::unexpected(errno_error(ErrorKind::io, "fence keeper: fork", saved));
  }
  if (child == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent)
      ::_exit(0);
    ::prctl(PR_SET_NAME, "crosvisor-fence");
    for (;;) {
      const std::int64_t deadline = shared->deadline_ns.load();
      if (deadline != 0 && monotonic_ns() >= deadline) {
        for (auto& slot : shared->slots) {
          const pid_t pid = slot.pid.load();
          if (pid <= 0)
            continue;
          // Only the process that was registered: never a pid that has been given again.
          if (start_time_of(pid) == slot.start_time.load() && ::kill(pid, SIGKILL) == 0)
            shared->kills.fetch_add(1);
          slot.pid.store(0);
        }
      }
      timespec pause{0, 50'000'000};  // 50 ms: well inside any margin
      ::nanosleep(&pause, nullptr);
    }
  }
  return FenceKeeper(shared, child);
}

FenceKeeper::FenceKeeper(FenceKeeper&& other) noexcept
    : shared_(other.shared_), keeper_(other.keeper_) {
  other.shared_ = nullptr;
  other.keeper_ = -1;
}

FenceKeeper::~FenceKeeper() {
  if (keeper_ > 0) {
    ::kill(keeper_, SIGKILL);
    ::waitpid(keeper_, nullptr, 0);
  }
  if (shared_ != nullptr) {
    shared_->~Shared();
    ::munmap(shared_, sizeof(Shared));
  }
}

void FenceKeeper::set_deadline(std::optional<Clock::time_point> deadline) {
  shared_->deadline_ns.store(
      deadline ? std::chrono::duration_cast<std::chrono::nanoseconds>(deadline->time_since_epoch())
                     .count()
               : 0);
}

Expected<void> FenceKeeper::watch(pid_t pid) {
  const std::uint64_t started = start_time_of(pid);
  if (started == 0)
    return make_error(ErrorKind::not_found, "process " + std::to_string(pid) + " is gone");
  // One writer (the daemon's thread that starts VMs): the start time first, then the pid that
  // makes the slot count, so that the keeper never sees a pid with another's start time.
  for (auto& slot : shared_->slots) {
    if (slot.pid.load() != 0)
      continue;
    slot.start_time.store(started);
    slot.pid.store(pid);
    return {};
  }
  return make_error(ErrorKind::limit,
                    "the fence keeper watches " + std::to_string(kSlots) + " VMMs already");
}

void FenceKeeper::unwatch(pid_t pid) {
  for (auto& slot : shared_->slots) {
    std::int32_t expected = pid;
    slot.pid.compare_exchange_strong(expected, 0);
  }
}

std::uint64_t FenceKeeper::kills() const {
  return shared_->kills.load();
}

}  // namespace crosvisor::cluster
