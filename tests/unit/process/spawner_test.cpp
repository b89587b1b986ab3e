// The VMM spawner (process/spawner.hpp): this test executable serves as one, as crosvisord does.
#include "process/spawner.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <thread>

#include "process/pidfd.hpp"
#include "process/spawner_wire.hpp"
#include "support/processes.hpp"
#include "support/subprocess.hpp"
#include "support/temp_dir.hpp"

using namespace crosvisor;
using namespace std::chrono_literals;

namespace {

// The parent pid /proc shows for `pid`.
pid_t parent_of(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("PPid:", 0) == 0)
      return std::stoi(line.substr(5));
  }
  return -1;
}

// Whether a child of ours has exited and is waiting to be reaped (a zombie left behind).
bool zombie_child() {
  siginfo_t info{};
  return ::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid != 0;
}

int exit_of(const process::SpawnedChild& child) {
  siginfo_t info{};
  ::waitid(P_PIDFD, child.pidfd.get(), &info, WEXITED);
  return info.si_code == CLD_EXITED ? info.si_status : -info.si_status;
}

}  // namespace

TEST_CASE("a launch request crosses the spawner's channel as it was, its fds in their places") {
  process::LaunchRequest request = test::sleeper_request();
  const int disk = request.fds.add(test::open_null());
  request.args = {"--disk", process::FdPlan::proc_path(disk), ""};
  request.environment = {"PATH=/bin", "A=b c"};
  request.max_open_files = 1234;
  request.die_with_supervisor = false;
  request.join_cgroups = {"/sys/fs/cgroup/pids/x/cgroup.procs"};
  UniqueFd namespace_fd = test::open_null();
  request.network_namespace = namespace_fd.get();
  process::Sandbox sandbox;
  sandbox.uid = 65534;
  sandbox.gid = 65533;
  sandbox.groups = {1, 2, 3};
  sandbox.mount_point = "/run/x/root";
  sandbox.read_only = {"/usr", "/etc/ld.so.cache"};
  sandbox.writable = {"/run/x"};
  sandbox.devices = {"/dev/null"};
  sandbox.hostname = "h";
  sandbox.own_network = true;
  sandbox.exec_through_fd = false;
  request.sandbox = sandbox;

  const auto encoded = process::spawner_wire::encode(request, "/bin/sleep");
  REQUIRE(encoded.fds.size() == 5);  // four planned, then the namespace
  CHECK(encoded.fds.back() == namespace_fd.get());
  std::vector<UniqueFd> fds;
  for (int fd : encoded.fds)
    fds.emplace_back(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
  auto decoded = process::spawner_wire::decode(encoded.bytes, std::move(fds));
  REQUIRE(decoded.has_value());
  const auto& back = decoded->request;
  CHECK(back.binary == "/bin/sleep");
  CHECK(back.args == request.args);
  CHECK(back.environment == request.environment);
  CHECK(back.max_open_files == 1234);
  CHECK_FALSE(back.die_with_supervisor);
  CHECK(back.join_cgroups == request.join_cgroups);
  REQUIRE(back.fds.entries().size() == 4);
  for (std::size_t i = 0; i < 4; ++i)
    CHECK(back.fds.entries()[i].target == request.fds.entries()[i].target);
  CHECK(back.network_namespace == decoded->network_namespace.get());
  REQUIRE(back.sandbox.has_value());
  CHECK(back.sandbox->uid == 65534);
  CHECK(back.sandbox->gid == 65533);
  CHECK(back.sandbox->groups == sandbox.groups);
  CHECK(back.sandbox->mount_point == sandbox.mount_point);
  CHECK(back.sandbox->read_only == sandbox.read_only);
  CHECK(back.sandbox->writable == sandbox.writable);
  CHECK(back.sandbox->devices == sandbox.devices);
  CHECK(back.sandbox->hostname == "h");
  CHECK(back.sandbox->own_network);
  CHECK_FALSE(back.sandbox->exec_through_fd);

  SECTION("fds that do not match the request are refused") {
    std::vector<UniqueFd> fewer;
    fewer.push_back(test::open_null());
    auto refused = process::spawner_wire::decode(encoded.bytes, std::move(fewer));
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().kind == ErrorKind::protocol);
  }
  SECTION("a cut message is refused") {
    std::vector<UniqueFd> same;
    for (int fd : encoded.fds)
      same.emplace_back(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
    auto refused = process::spawner_wire::decode(
        std::string_view(encoded.bytes).substr(0, encoded.bytes.size() - 3), std::move(same));
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().kind == ErrorKind::protocol);
  }
  SECTION("answers come back too") {
    process::spawner_wire::Answer answer;
    answer.unreaped = 42;
    answer.error = Error{ErrorKind::limit, "too many"};
    auto again = process::spawner_wire::decode_answer(process::spawner_wire::encode(answer));
    REQUIRE(again.has_value());
    CHECK(again->unreaped == 42);
    CHECK(again->error == answer.error);
    CHECK_FALSE(process::spawner_wire::decode_answer("abc").has_value());
  }
}

TEST_CASE(
    "the spawner's children are ours, hold exactly their planned fds, and it holds none of ours") {
  // A supervisor with many VMs: many fds, some not even close-on-exec, none of which the
  // spawner or a child may hold.
  std::vector<UniqueFd> held;
  for (int i = 0; i < 500; ++i)
    held.emplace_back(::open("/dev/null", O_RDONLY));
  auto spawner = process::Spawner::start("/proc/self/exe");
  REQUIRE(spawner.has_value());
  for (int launch = 0; launch < 3; ++launch) {
    process::LaunchRequest request = test::sleeper_request();
    const int extra = request.fds.add(test::open_null());
    auto child = spawner->spawn(request);
    REQUIRE(child.has_value());
    CHECK(parent_of(child->pid) == ::getpid());
    CHECK(test::open_fds(child->pid) == std::set<int>{0, 1, 2, extra});
    CHECK(getpgid(child->pid) == child->pid);
    pidfd_send_signal(child->pidfd.get(), SIGTERM, nullptr, 0);
    CHECK(exit_of(*child) == -SIGTERM);
  }
  // Its standard streams and its channel, and nothing any launch passed through it. (The last
  // child's pidfd goes once its answer is sent: the spawner may not have run since.)
  const auto spawner_fds = [&] { return test::open_fds(spawner->pid()); };
  test::eventually([&] { return spawner_fds() == std::set<int>{0, 1, 2, 3}; }, 5s);
  CHECK(spawner_fds() == std::set<int>{0, 1, 2, 3});
  CHECK(spawner->alive());
}

TEST_CASE("the spawner's children die with the thread that started the spawner") {
  std::optional<process::Spawner> spawner;
  pid_t child = -1;
  UniqueFd child_pidfd;
  std::thread([&] {
    auto started = process::Spawner::start("/proc/self/exe");
    if (!started)
      return;
    spawner.emplace(std::move(*started));
    auto spawned = spawner->spawn(test::sleeper_request());
    if (!spawned)
      return;
    child = spawned->pid;
    child_pidfd = std::move(spawned->pidfd);
  }).join();
  REQUIRE(child > 0);
  // PR_SET_PDEATHSIG follows the parent, the thread that started the spawner, not the spawner.
  siginfo_t info{};
  REQUIRE(::waitid(P_PIDFD, child_pidfd.get(), &info, WEXITED) == 0);
  CHECK(info.si_code == CLD_KILLED);
  CHECK(info.si_status == SIGKILL);
  spawner.reset();  // it died the same way; reaped
  CHECK_FALSE(zombie_child());
}

TEST_CASE("a launch the spawner cannot make fails with the reason, and no child is left") {
  test::TempDir dir;
  const auto not_a_program = dir / "not-a-program";
  std::ofstream(not_a_program) << "neither ELF nor a script\n";
  ::chmod(not_a_program.c_str(), 0755);
  auto spawner = process::Spawner::start("/proc/self/exe");
  REQUIRE(spawner.has_value());
  process::LaunchRequest request = test::sleeper_request();
  request.binary = not_a_program;
  auto failed = spawner->spawn(request);
  REQUIRE_FALSE(failed.has_value());
  CHECK(failed.error().kind == ErrorKind::launch);
  CHECK_THAT(failed.error().message, Catch::Contains("execve: Exec format error"));
  CHECK_FALSE(zombie_child());  // the child that failed was reaped by us, its parent
  CHECK(spawner->alive());
  // And the next launch works.
  auto child = spawner->spawn(test::sleeper_request());
  REQUIRE(child.has_value());
  pidfd_send_signal(child->pidfd.get(), SIGKILL, nullptr, 0);
  CHECK(exit_of(*child) == -SIGKILL);
}

TEST_CASE("a spawner that was killed is known to be gone, and one that is let go ends") {
  auto started = process::Spawner::start("/proc/self/exe");
  REQUIRE(started.has_value());
  std::optional<process::Spawner> spawner(std::move(*started));
  const pid_t pid = spawner->pid();
  SECTION("killed") {
    ::kill(pid, SIGKILL);
    auto failed = spawner->spawn(test::sleeper_request());
    REQUIRE_FALSE(failed.has_value());
    CHECK(failed.error().kind == ErrorKind::launch);
    CHECK_FALSE(spawner->alive());
  }
  SECTION("let go") {
    spawner.reset();
    CHECK_FALSE(test::process_alive(pid));
    CHECK(::kill(pid, 0) != 0);  // reaped, not a zombie
  }
}

TEST_CASE("the spawner runs with the supervisor's sanitizer options and nothing else of its own") {
  const char* before = std::getenv("UBSAN_OPTIONS");
  const std::string saved = before ? before : "";
  ::setenv("UBSAN_OPTIONS", "print_stacktrace=1:spawner_test=1", 1);
  ::setenv("CROSVISOR_SPAWNER_TEST_SECRET", "not for the spawner", 1);
  auto started = process::Spawner::start("/proc/self/exe");
  if (before)
    ::setenv("UBSAN_OPTIONS", saved.c_str(), 1);
  else
    ::unsetenv("UBSAN_OPTIONS");
  ::unsetenv("CROSVISOR_SPAWNER_TEST_SECRET");
  REQUIRE(started.has_value());
  // Read once it serves (it names itself then): start returns as soon as its exec has begun,
  // and an exec not finished yet shows no environment at all.
  const auto proc = "/proc/" + std::to_string(started->pid());
  const auto name = [&] {
    std::ifstream comm(proc + "/comm");
    std::string line;
    std::getline(comm, line);
    return line;
  };
  REQUIRE(test::eventually([&] { return name() == "crosvisor-spawn"; }, 5s));
  std::ifstream environment(proc + "/environ");
  const std::string all((std::istreambuf_iterator<char>(environment)), {});
  CHECK(all.find(std::string("UBSAN_OPTIONS=print_stacktrace=1:spawner_test=1") + '\0') !=
        std::string::npos);
  CHECK(all.find("CROSVISOR_SPAWNER_TEST_SECRET") == std::string::npos);
  CHECK(all.find("PATH=") != std::string::npos);
}
