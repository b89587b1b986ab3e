// Boost.Process 1.74 enables its vfork executor only for pre-2008 POSIX feature macros; glibc has
// vfork regardless. We need it: with vfork the child reports setup errors through shared memory,
// while the fork executor's error pipe could be overwritten when we place fds at planned numbers.
#define BOOST_POSIX_HAS_VFORK 1

#include "process/launch.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/process/args.hpp>
#include <boost/process/child.hpp>
#include <boost/process/env.hpp>
#include <boost/process/error.hpp>
#include <boost/process/exe.hpp>
#include <boost/process/extend.hpp>
#include <boost/process/posix.hpp>
#include <boost/process/search_path.hpp>
#include <cstdlib>
#include <cstring>

#include "process/pidfd.hpp"

namespace crosvisor::process {
namespace bp = boost::process;

namespace {

// What a child that failed before or at exec reports through the exec-report pipe.
struct ChildFailure {
  int errnum;
  char step[20];
};

// Runs in the child between vfork and exec. The child shares the parent's memory and the parent
// thread is suspended, so only async-signal-safe system calls are allowed here, no allocation:
// all buffers were sized in the parent.
//
// Success and failure are reported through a close-on-exec pipe rather than through
// Boost.Process's own channels: end-of-file on it means exec happened, a ChildFailure means it did
// not. This holds whether the executor really vforks or forks (sanitizers turn vfork into fork),
// and the pipe is moved above every planned number first, so placing fds cannot overwrite it.
struct ExactChildSetup : bp::extend::handler {
  const std::vector<FdPlan::Entry>* entries;
  std::vector<int>* scratch;  // one slot per entry
  int scratch_base;           // above every planned number
  int report_fd;              // write end of the exec-report pipe
  pid_t parent;
  rlim_t max_open_files;
  int network_namespace;  // joined first, when >= 0
  bool die_with_parent;
  // Set in the parent when Boost.Process gives up on a child it did create, so we can reap it.
  mutable pid_t failed_child = -1;

  void fail(const char* step) const {
    ChildFailure failure{errno, {}};
    for (std::size_t i = 0; step[i] != '\0' && i + 1 < sizeof(failure.step); ++i) {
      failure.step[i] = step[i];
    }
    [[maybe_unused]] auto written = write(report_fd, &failure, sizeof(failure));
    _exit(127);
  }

  template <class Executor>
  void on_exec_setup(Executor&) const {
    // The supervisor blocks the signals it handles through a signalfd; the VMM must see them.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    if (network_namespace >= 0 && setns(network_namespace, CLONE_NEWNET) != 0)
      fail("setns");

    const int moved_report = fcntl(report_fd, F_DUPFD_CLOEXEC, scratch_base + entries->size());
    if (moved_report < 0)
      fail("move report pipe");
    const_cast<ExactChildSetup*>(this)->report_fd = moved_report;

    // Move every source above every planned number first, so that placing one fd never
    // overwrites the source of another.
    for (std::size_t i = 0; i < entries->size(); ++i) {
      (*scratch)[i] = fcntl((*entries)[i].source.get(), F_DUPFD_CLOEXEC, scratch_base);
      if ((*scratch)[i] < 0)
        fail("dup source");
    }
    // Everything inherited that is not planned is closed by exec.
    if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
      fail("close_range");
    // dup2 leaves the new descriptor without FD_CLOEXEC: exactly the planned fds survive.
    for (std::size_t i = 0; i < entries->size(); ++i) {
      if (dup2((*scratch)[i], (*entries)[i].target) < 0)
        fail("dup2");
    }
    // Its own process group, so that a stop can signal the VMM and anything it forked.
    if (setpgid(0, 0) != 0)
      fail("setpgid");
    // The VMM never outlives the supervisor (unless it is meant to); close the race with a
    // parent that already died.
    if (die_with_parent) {
      if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        fail("prctl");
      if (getppid() != parent)
        _exit(127);
    }
    const rlimit limit{max_open_files, max_open_files};
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0)
      fail("setrlimit");
  }

  template <class Executor>
  void on_error(Executor& exec, const std::error_code&) const {
    failed_child = exec.pid;
  }

  template <class Executor>
  void on_exec_error(Executor&, const std::error_code& error) const {
    errno = error.value();
    fail("execve");
  }
};

// Reaps a child that failed before exec; it has exited or is about to.
void reap(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace

Expected<std::filesystem::path> resolve_binary(const std::filesystem::path& binary) {
  if (binary.empty())
    return make_error(ErrorKind::launch, "no VMM binary given");
  if (binary.native().find('/') != std::string::npos) {
    if (access(binary.c_str(), X_OK) != 0) {
      return std::unexpected(errno_error(ErrorKind::not_found, binary.string(), errno));
    }
    return std::filesystem::absolute(binary);
  }
  const auto found = bp::search_path(binary.string());
  if (found.empty()) {
    const char* path = std::getenv("PATH");
    return make_error(ErrorKind::not_found, binary.string() + ": not found on PATH (" +
                                                std::string(path ? path : "") + ")");
  }
  return std::filesystem::path(found.string());
}

Expected<SpawnedChild> spawn_child(const LaunchRequest& request) {
  auto binary = resolve_binary(request.binary);
  if (!binary)
    return std::unexpected(binary.error());

  bp::environment environment;
  for (const auto& entry : request.environment) {
    const auto equals = entry.find('=');
    if (equals == std::string::npos)
      continue;
    environment[entry.substr(0, equals)] = entry.substr(equals + 1);
  }

  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0)
    return std::unexpected(errno_error(ErrorKind::launch, "pipe", errno));
  UniqueFd report_read(report[0]);
  UniqueFd report_write(report[1]);

  // The VMM's fd table: as asked, but never more than this process may grant (setrlimit in
  // the child cannot raise the hard limit), and large enough for every planned fd.
  rlim_t max_open_files = request.max_open_files;
  if (rlimit own{}; getrlimit(RLIMIT_NOFILE, &own) == 0 && own.rlim_max < max_open_files)
    max_open_files = own.rlim_max;
  const int scratch_base = std::max(request.fds.highest_target() + 1, 64);
  const auto needed = static_cast<rlim_t>(scratch_base) + request.fds.entries().size() + 2;
  if (needed > max_open_files) {
    return make_error(ErrorKind::limit, binary->string() + " needs fd numbers up to " +
                                            std::to_string(needed) + ", but RLIMIT_NOFILE allows " +
                                            std::to_string(max_open_files) +
                                            ": raise the hard limit of crosvisord's open files");
  }
  const auto& entries = request.fds.entries();
  std::vector<int> scratch(entries.size(), -1);
  ExactChildSetup setup;
  setup.entries = &entries;
  setup.scratch = &scratch;
  setup.scratch_base = scratch_base;
  setup.report_fd = report_write.get();
  setup.parent = getpid();
  setup.max_open_files = max_open_files;
  setup.network_namespace = request.network_namespace;
  setup.die_with_parent = request.die_with_supervisor;

  std::error_code error;
  bp::child child(bp::exe = binary->string(), bp::args = request.args, bp::env = environment, setup,
                  bp::posix::use_vfork, bp::error = error);
  report_write.reset();
  const pid_t pid = child.valid() ? child.id() : setup.failed_child;
  // We reap through a pidfd ourselves; the bp::child must not kill or wait on destruction.
  if (child.valid())
    child.detach();

  // End-of-file once the child has exec'd (its copy of the pipe closes at exec).
  ChildFailure failure{};
  ssize_t got;
  while ((got = read(report_read.get(), &failure, sizeof(failure))) < 0 && errno == EINTR) {
  }
  if (got > 0 || error || !child.valid()) {
    if (pid > 0)
      reap(pid);
    std::string why = got > 0 ? std::string(failure.step) + ": " + std::strerror(failure.errnum)
                              : (error ? error.message() : "could not be started");
    return make_error(ErrorKind::launch, binary->string() + ": " + why);
  }
  UniqueFd pidfd(pidfd_open(pid, 0));
  if (!pidfd) {
    const int saved = errno;
    kill(pid, SIGKILL);
    reap(pid);
    return std::unexpected(errno_error(ErrorKind::launch, "pidfd_open", saved));
  }
  return SpawnedChild{pid, std::move(pidfd)};
}

}  // namespace crosvisor::process
