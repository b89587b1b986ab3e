#include "process/launch.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <thread>

#include "process/pidfd.hpp"
#include "support/processes.hpp"
#include "support/subprocess.hpp"
#include "support/temp_dir.hpp"

using namespace crosvisor;
using namespace std::chrono_literals;

namespace {

// The identity of an open file as /proc shows it ("pipe:[1234]", a path...).
std::string fd_target(pid_t pid, int fd) {
  return std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd))
      .string();
}

unsigned long fd_flags(pid_t pid, int fd) {
  std::ifstream info("/proc/" + std::to_string(pid) + "/fdinfo/" + std::to_string(fd));
  std::string key;
  while (info >> key) {
    if (key == "flags:") {
      std::string octal;
      info >> octal;
      return std::stoul(octal, nullptr, 8);
    }
  }
  return 0;
}

void kill_and_reap(const process::SpawnedChild& child) {
  pidfd_send_signal(child.pidfd.get(), SIGKILL, nullptr, 0);
  siginfo_t info{};
  waitid(P_PIDFD, child.pidfd.get(), &info, WEXITED);
}

}  // namespace

TEST_CASE("the child holds exactly the planned fds, none close-on-exec, in its own group") {
  // A stray descriptor of ours that must not leak into the child.
  UniqueFd stray(::open("/dev/null", O_RDONLY));  // deliberately without O_CLOEXEC
  process::LaunchRequest request = test::sleeper_request();
  int pipe_ends[2];
  REQUIRE(pipe2(pipe_ends, O_CLOEXEC) == 0);
  UniqueFd read_end(pipe_ends[0]), write_end(pipe_ends[1]);
  const int first = request.fds.add(UniqueFd(fcntl(read_end.get(), F_DUPFD_CLOEXEC, 0)));
  const int second = request.fds.add(UniqueFd(fcntl(write_end.get(), F_DUPFD_CLOEXEC, 0)));

  auto child = process::spawn_child(request);
  REQUIRE(child.has_value());
  CHECK(test::open_fds(child->pid) == std::set<int>{0, 1, 2, first, second});
  CHECK((fd_flags(child->pid, first) & O_CLOEXEC) == 0);
  CHECK((fd_flags(child->pid, second) & O_CLOEXEC) == 0);
  CHECK(fd_target(child->pid, first) == fd_target(getpid(), read_end.get()));
  CHECK(getpgid(child->pid) == child->pid);
  kill_and_reap(*child);
}

TEST_CASE("planned numbers that collide with other sources are still placed right (a swap)") {
  UniqueFd a(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  UniqueFd b(::open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
  // Put the sources at 100 and 101, then ask for them the other way round.
  REQUIRE(dup3(a.get(), 100, O_CLOEXEC) == 100);
  REQUIRE(dup3(b.get(), 101, O_CLOEXEC) == 101);
  process::LaunchRequest request = test::sleeper_request();
  request.fds.set(100, UniqueFd(101));
  request.fds.set(101, UniqueFd(100));
  auto child = process::spawn_child(request);
  REQUIRE(child.has_value());
  CHECK(fd_target(child->pid, 100) == fd_target(getpid(), b.get()));
  CHECK(fd_target(child->pid, 101) == "/dev/null");
  kill_and_reap(*child);
}

TEST_CASE("the environment is exactly the one given") {
  test::TempDir dir;
  process::LaunchRequest request;
  request.binary = "/bin/sh";
  request.args = {"-c", "env > " + (dir / "env").string()};
  request.environment = {"ONLY=this"};
  request.fds.set(0, test::open_null());
  setenv("CROSVISOR_LEAK_CHECK", "1", 1);
  auto child = process::spawn_child(request);
  REQUIRE(child.has_value());
  siginfo_t info{};
  waitid(P_PIDFD, child->pidfd.get(), &info, WEXITED);
  std::ifstream env(dir / "env");
  std::string text((std::istreambuf_iterator<char>(env)), std::istreambuf_iterator<char>());
  CHECK_THAT(text, Catch::Contains("ONLY=this"));
  CHECK_THAT(text, !Catch::Contains("CROSVISOR_LEAK_CHECK"));
}

TEST_CASE("a missing binary or one that cannot run is an error and leaves no zombie") {
  process::LaunchRequest missing = test::sleeper_request();
  missing.binary = "no-such-vmm-binary";
  auto none = process::spawn_child(missing);
  REQUIRE_FALSE(none.has_value());
  CHECK_THAT(none.error().message, Catch::StartsWith("no-such-vmm-binary: not found on PATH ("));

  test::TempDir dir;
  const auto script = dir.write("not-executable-format",
                                "\x7f"
                                "ELF garbage");
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  process::LaunchRequest garbage = test::sleeper_request();
  garbage.binary = script;
  auto failed = process::spawn_child(garbage);
  REQUIRE_FALSE(failed.has_value());
  CHECK(failed.error().kind == ErrorKind::launch);
  // The failed child was reaped: nothing is left for us to wait on.
  CHECK(waitpid(-1, nullptr, WNOHANG) == -1);
  CHECK(errno == ECHILD);
}

TEST_CASE("the child dies with the thread that started it (PR_SET_PDEATHSIG)") {
  pid_t pid = -1;
  std::thread launcher([&] {
    auto child = process::spawn_child(test::sleeper_request());
    REQUIRE(child.has_value());
    pid = child->pid;
    // The pidfd closes here; the child stays unreaped until this test reaps it below.
  });
  launcher.join();
  REQUIRE(pid > 0);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);
}
