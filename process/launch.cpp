#include "process/launch.hpp"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/process/search_path.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "process/pidfd.hpp"

namespace crosvisor::process {

namespace {

// Code a child runs before exec, on a stack of its own when it was cloned with CLONE_VM: not
// instrumented by the sanitizers, whose runtime would take that stack for a corrupt one of the
// parent's thread (ASan's no-return handling reports a stack-buffer-underflow there).
#define CHILD_CODE __attribute__((no_sanitize("address", "undefined")))

// What a child that failed before or at exec reports through the exec-report pipe.
struct ChildFailure {
  int errnum;
  char step[20];
};

// Runs in the child between clone (with CLONE_VM | CLONE_VFORK, as vfork) and exec.
// The child shares the parent's memory, and the parent thread is suspended meanwhile: only
// async-signal-safe system calls are allowed here, no allocation (all buffers were sized and
// every path built in the parent), and no glibc call that coordinates threads (the child is one
// thread of a process glibc believes has many: ids are changed with raw system calls).
//
// Success and failure are reported through a close-on-exec pipe: end-of-file on it means exec
// happened, a ChildFailure means it did not. The pipe is moved above every planned number first,
// so placing fds cannot overwrite it.
struct ChildSetup {
  const std::vector<FdPlan::Entry>* entries;
  std::vector<int>* scratch;  // one slot per entry
  int scratch_base;           // above every planned number
  int report_fd;              // write end of the exec-report pipe
  pid_t parent;
  rlim_t max_open_files;
  int network_namespace;  // joined first, when >= 0
  bool die_with_parent;
  const std::vector<std::string>* cgroups;  // cgroup.procs files to join

  [[noreturn]] CHILD_CODE void fail(const char* step) const {
    ChildFailure failure{errno, {}};
    for (std::size_t i = 0; step[i] != '\0' && i + 1 < sizeof(failure.step); ++i) {
      failure.step[i] = step[i];
    }
    [[maybe_unused]] auto written = write(report_fd, &failure, sizeof(failure));
    _exit(127);
  }

  // Signals, network namespace, the planned fds, process group and (unless the caller still
  // opens files: the supervisor's fds stay open until exec, and a supervisor of a thousand VMs
  // holds more than a VMM's limit allows) the fd limit.
  CHILD_CODE void common(bool limit_fds = true) {
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
    report_fd = moved_report;

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
    for (const auto& procs : *cgroups) {
      const int fd = open(procs.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0 || write(fd, "0", 1) != 1)
        fail("join cgroup");
      close(fd);
    }
    if (limit_fds)
      limit_open_files();
  }

  CHILD_CODE void limit_open_files() const {
    const rlimit limit{max_open_files, max_open_files};
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0)
      fail("setrlimit");
  }
};

// A child that runs as the supervisor does, but for its fds, signals, group and limits.
struct PlainChild {
  ChildSetup* setup;
  bool no_new_privs;
  const char* path;
  char* const* argv;
  char* const* envp;

  [[noreturn]] CHILD_CODE void run() {
    setup->common();
    if (no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
      setup->fail("no_new_privs");
    // The VMM never outlives the supervisor (unless it is meant to); close the race with a
    // parent that already died.
    if (setup->die_with_parent) {
      if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        setup->fail("prctl");
      if (getppid() != setup->parent) {
        errno = ESRCH;
        setup->fail("supervisor ended");
      }
    }
    execve(path, argv, envp);
    setup->fail("execve");
  }
};

// A confined child: namespaces of its own, a root of its own, its ids, no capabilities.
struct ConfinedChild {
  struct Step {
    RootStep::Kind kind;
    const char* source;
    const char* target;  // under the mount point
  };
  ChildSetup* setup;
  const Step* steps;
  std::size_t step_count;
  const char* mount_point;
  const char* hostname;
  uid_t uid;
  gid_t gid;
  const gid_t* groups;
  std::size_t group_count;
  int last_capability;
  int parent_pidfd;  // readable once the supervisor has ended
  int binary_fd;     // O_PATH
  char* const* argv;
  char* const* envp;

  CHILD_CODE void bind(const Step& step, unsigned long flags) const {
    if (mount(step.source, step.target, nullptr, MS_BIND | MS_REC, nullptr) != 0)
      setup->fail("bind");
    if (mount(nullptr, step.target, nullptr, MS_REMOUNT | MS_BIND | flags, nullptr) != 0)
      setup->fail("remount bind");
  }

  CHILD_CODE void make_root() const {
    // Nothing it mounts propagates back to the host.
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
      setup->fail("private mounts");
    for (std::size_t i = 0; i < step_count; ++i) {
      const Step& step = steps[i];
      switch (step.kind) {
        case RootStep::Kind::mount_root:
          if (mount("tmpfs", step.target, "tmpfs", MS_NOSUID, "mode=0755,size=1m") != 0)
            setup->fail("mount root");
          break;
        case RootStep::Kind::mount_tmp:
          if (mount("tmpfs", step.target, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=16m") != 0)
            setup->fail("mount /tmp");
          break;
        case RootStep::Kind::mount_proc:
          if (mount("proc", step.target, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
            setup->fail("mount /proc");
          break;
        case RootStep::Kind::make_dir:
          if (mkdir(step.target, 0755) != 0 && errno != EEXIST)
            setup->fail("mkdir");
          break;
        case RootStep::Kind::make_file: {
          const int fd = open(step.target, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
          if (fd < 0)
            setup->fail("make file");
          close(fd);
          break;
        }
        case RootStep::Kind::symlink:
          if (symlink(step.source, step.target) != 0)
            setup->fail("symlink");
          break;
        case RootStep::Kind::bind_read_only:
          bind(step, MS_RDONLY | MS_NOSUID | MS_NODEV);
          break;
        case RootStep::Kind::bind_writable:
          bind(step, MS_NOSUID | MS_NODEV);
          break;
        case RootStep::Kind::bind_device:
          bind(step, MS_NOSUID);
          break;
      }
    }
    // The new root in place of the old, which is then let go of entirely.
    if (chdir(mount_point) != 0 || syscall(SYS_pivot_root, ".", ".") != 0)
      setup->fail("pivot_root");
    if (umount2(".", MNT_DETACH) != 0 || chdir("/") != 0)
      setup->fail("umount old root");
    if (mount(nullptr, "/", nullptr, MS_REMOUNT | MS_RDONLY | MS_NOSUID, nullptr) != 0)
      setup->fail("read-only root");
  }

  CHILD_CODE void drop_privileges() const {
    for (int capability = 0; capability <= last_capability; ++capability) {
      if (prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0 && errno != EINVAL)
        setup->fail("drop capability");
    }
    // Raw system calls: glibc's wrappers would make every thread of the process change ids
    // (POSIX's per-process credentials), and wait for threads this copy of it does not have.
    if (syscall(SYS_setgroups, group_count, groups) != 0)
      setup->fail("setgroups");
    if (syscall(SYS_setresgid, gid, gid, gid) != 0)
      setup->fail("setresgid");
    // From root to another uid the permitted and effective sets are cleared; for root itself
    // (asked for) an empty bounding set leaves it none across exec.
    if (syscall(SYS_setresuid, uid, uid, uid) != 0)
      setup->fail("setresuid");
    (void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
      setup->fail("no_new_privs");
  }

  [[noreturn]] CHILD_CODE void run() {
    // Above every planned number, like the report pipe, so that placing fds leaves them be.
    const int base = setup->scratch_base + static_cast<int>(setup->entries->size()) + 1;
    binary_fd = fcntl(binary_fd, F_DUPFD_CLOEXEC, base);
    parent_pidfd = fcntl(parent_pidfd, F_DUPFD_CLOEXEC, base);
    if (binary_fd < 0 || parent_pidfd < 0)
      setup->fail("move fds");
    setup->common(false);
    if (sethostname(hostname, strlen(hostname)) != 0)
      setup->fail("sethostname");
    make_root();  // opens files: before the VMM's fd limit
    setup->limit_open_files();
    // No core dumps: a VMM's core is its guest's memory, written wherever its working directory
    // is (crosvisor's own dumps go through QMP, to a file it chose).
    const rlimit no_core{0, 0};
    if (setrlimit(RLIMIT_CORE, &no_core) != 0)
      setup->fail("setrlimit core");
    drop_privileges();
    // After the ids changed (which clears the parent-death signal), and with the race against
    // a supervisor that already ended closed through its pidfd (its pid means nothing in this
    // pid namespace).
    if (setup->die_with_parent) {
      if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        setup->fail("prctl");
      pollfd ended{parent_pidfd, POLLIN, 0};
      if (poll(&ended, 1, 0) != 0) {
        errno = ESRCH;
        setup->fail("supervisor ended");
      }
    }
    syscall(SYS_execveat, binary_fd, "", argv, envp, AT_EMPTY_PATH);
    setup->fail("execve");
  }
};

template <class Child>
CHILD_CODE int child_main(void* child) {
  static_cast<Child*>(child)->run();  // execs or exits
  return 127;
}

// The child's stack (it runs on it until exec): a confined child's steps are a few frames deep;
// room for sanitizers' redzones too.
constexpr std::size_t kChildStack = 256 * 1024;

// The highest capability this kernel knows (each is dropped from the bounding set): read once.
int last_capability() {
  static const int last = [] {
    int known = CAP_LAST_CAP;
    if (FILE* file = std::fopen("/proc/sys/kernel/cap_last_cap", "re")) {
      if (std::fscanf(file, "%d", &known) != 1)
        known = CAP_LAST_CAP;
      std::fclose(file);
    }
    return known;
  }();
  return last;
}

// Reads the exec report: end-of-file once the child exec'd, else why it did not.
std::optional<std::string> exec_failure(int report) {
  ChildFailure failure{};
  ssize_t got;
  while ((got = read(report, &failure, sizeof(failure))) < 0 && errno == EINTR) {
  }
  if (got <= 0)
    return std::nullopt;
  return std::string(failure.step) + ": " + std::strerror(failure.errnum);
}

// Strings as the NUL-terminated pointer arrays execve takes, built before the clone.
struct CStrings {
  std::vector<std::string> storage;
  std::vector<char*> pointers;

  explicit CStrings(std::vector<std::string> strings) : storage(std::move(strings)) {
    pointers.reserve(storage.size() + 1);
    for (auto& string : storage)
      pointers.push_back(string.data());
    pointers.push_back(nullptr);
  }
  CStrings(const CStrings&) = delete;  // the pointers point into this object's strings
  CStrings& operator=(const CStrings&) = delete;
  char* const* get() { return pointers.data(); }
};

// argv: the program's path, then its arguments.
std::vector<std::string> argv_of(const std::filesystem::path& binary,
                                 const std::vector<std::string>& args) {
  std::vector<std::string> argv{binary.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

// The child's environment from "NAME=value" entries: one per name, the last given winning, and
// anything without a '=' left out.
std::vector<std::string> environment_of(const std::vector<std::string>& entries) {
  std::vector<std::string> kept;
  for (auto entry = entries.rbegin(); entry != entries.rend(); ++entry) {
    const auto equals = entry->find('=');
    if (equals == std::string::npos || equals == 0)
      continue;
    const std::string_view name(entry->data(), equals + 1);
    if (std::none_of(kept.begin(), kept.end(),
                     [&](const std::string& other) { return other.starts_with(name); }))
      kept.push_back(*entry);
  }
  return {kept.rbegin(), kept.rend()};
}

// What one start needs besides the request: the program, its report pipe and its lineage.
struct Start {
  const std::filesystem::path& binary;
  UniqueFd report_read;
  UniqueFd report_write;
  Lineage lineage;
  pid_t* unreaped;
};

// As vfork (and posix_spawn) do: the child borrows this process's memory on a stack of its own,
// and this thread waits until it has exec'd or died. A copy of the process instead would cost a
// copy of the page tables and a copy-on-write fault per page the daemon then touches, for each
// VMM: 2.2 ms per VM at 1 000 VMs (docs/performance.md).
template <class Child>
Expected<SpawnedChild> clone_child(Child& child, int flags, Start start) {
  void* stack = ::mmap(nullptr, kChildStack, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED)
    return std::unexpected(errno_error(ErrorKind::launch, "a stack for the child", errno));
  flags |= CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD;
  if (start.lineage.sibling)
    flags |= CLONE_PARENT;
  int pidfd = -1;
  const int pid =
      ::clone(child_main<Child>, static_cast<char*>(stack) + kChildStack, flags, &child, &pidfd);
  const int clone_error = errno;
  ::munmap(stack, kChildStack);
  if (pid < 0)
    return std::unexpected(
        errno_error(ErrorKind::launch, start.binary.string() + ": clone", clone_error));
  start.report_write.reset();
  UniqueFd handle(pidfd);
  if (auto failed = exec_failure(start.report_read.get())) {
    // Our own child is reaped here; a sibling is the supervisor's to reap.
    if (start.lineage.sibling)
      *start.unreaped = static_cast<pid_t>(pid);
    else
      reap_child(static_cast<pid_t>(pid));
    return make_error(ErrorKind::launch, start.binary.string() + ": " + *failed);
  }
  return SpawnedChild{static_cast<pid_t>(pid), std::move(handle)};
}

// Starts a child that runs as the supervisor does (no_new_privs aside, when its sandbox has no
// namespaces).
Expected<SpawnedChild> spawn_plain(const LaunchRequest& request, ChildSetup& setup, Start start) {
  CStrings argv(argv_of(start.binary, request.args));
  CStrings envp(environment_of(request.environment));
  const std::string path = start.binary.string();
  PlainChild child{&setup, request.sandbox.has_value(), path.c_str(), argv.get(), envp.get()};
  return clone_child(child, 0, std::move(start));
}

// Starts a confined child in new mount, pid, IPC, UTS and (unless it needs the host's) network
// namespaces, that builds its root, drops its ids and capabilities and execs the program through
// an fd.
Expected<SpawnedChild> spawn_confined(const LaunchRequest& request, ChildSetup& setup,
                                      Start start) {
  const std::filesystem::path& binary = start.binary;
  const Sandbox& sandbox = *request.sandbox;
  if (sandbox.mount_point.empty())
    return make_error(ErrorKind::launch, binary.string() + ": the sandbox has no mount point");
  CStrings argv(argv_of(binary, request.args));
  CStrings envp(environment_of(request.environment));

  const std::vector<RootStep> plan = plan_root(sandbox);
  const std::string mount_point = sandbox.mount_point.string();
  std::vector<std::string> targets;
  targets.reserve(plan.size());
  for (const auto& step : plan)
    targets.push_back(mount_point + step.target);
  std::vector<ConfinedChild::Step> steps;
  for (std::size_t i = 0; i < plan.size(); ++i)
    steps.push_back({plan[i].kind, plan[i].source.c_str(), targets[i].c_str()});

  UniqueFd program(::open(binary.c_str(), O_PATH | O_CLOEXEC));
  if (!program)
    return std::unexpected(errno_error(ErrorKind::launch, binary.string(), errno));
  UniqueFd supervisor(pidfd_open(start.lineage.supervisor, 0));
  if (!supervisor)
    return std::unexpected(errno_error(ErrorKind::launch, "pidfd_open of the supervisor", errno));

  ConfinedChild child{&setup,
                      steps.data(),
                      steps.size(),
                      mount_point.c_str(),
                      sandbox.hostname.c_str(),
                      sandbox.uid,
                      sandbox.gid,
                      sandbox.groups.data(),
                      sandbox.groups.size(),
                      last_capability(),
                      supervisor.get(),
                      program.get(),
                      argv.get(),
                      envp.get()};
  const int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS |
                    (sandbox.own_network ? CLONE_NEWNET : 0);
  return clone_child(child, flags, std::move(start));
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
  const auto found = boost::process::search_path(binary.string());
  if (found.empty()) {
    const char* path = std::getenv("PATH");
    return make_error(ErrorKind::not_found, binary.string() + ": not found on PATH (" +
                                                std::string(path ? path : "") + ")");
  }
  return std::filesystem::path(found.string());
}

void reap_child(pid_t pid) {
  while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

Expected<SpawnedChild> spawn_child(const LaunchRequest& request) {
  pid_t unreaped = -1;
  return spawn_child(request, Lineage{getpid(), false}, unreaped);
}

Expected<SpawnedChild> spawn_child(const LaunchRequest& request, Lineage lineage, pid_t& unreaped) {
  auto binary = resolve_binary(request.binary);
  if (!binary)
    return std::unexpected(binary.error());

  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0)
    return std::unexpected(errno_error(ErrorKind::launch, "pipe", errno));
  Start start{*binary, UniqueFd(report[0]), UniqueFd(report[1]), lineage, &unreaped};

  // The VMM's fd table: as asked, but never more than this process may grant (setrlimit in
  // the child cannot raise the hard limit), and large enough for every planned fd.
  rlim_t max_open_files = request.max_open_files;
  if (rlimit own{}; getrlimit(RLIMIT_NOFILE, &own) == 0 && own.rlim_max < max_open_files)
    max_open_files = own.rlim_max;
  const int scratch_base = std::max(request.fds.highest_target() + 1, 64);
  const auto needed = static_cast<rlim_t>(scratch_base) + request.fds.entries().size() + 4;
  if (needed > max_open_files) {
    return make_error(ErrorKind::limit, binary->string() + " needs fd numbers up to " +
                                            std::to_string(needed) + ", but RLIMIT_NOFILE allows " +
                                            std::to_string(max_open_files) +
                                            ": raise the hard limit of crosvisord's open files");
  }
  const auto& entries = request.fds.entries();
  std::vector<int> scratch(entries.size(), -1);
  ChildSetup setup{&entries,
                   &scratch,
                   scratch_base,
                   start.report_write.get(),
                   lineage.supervisor,
                   max_open_files,
                   request.network_namespace,
                   request.die_with_supervisor,
                   &request.join_cgroups};
  if (request.sandbox && request.sandbox->namespaces)
    return spawn_confined(request, setup, std::move(start));
  return spawn_plain(request, setup, std::move(start));
}

}  // namespace crosvisor::process
