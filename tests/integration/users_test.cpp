// Two users on one host (root and nobody, through setpriv): what each can see and take, where
// `vm` finds a daemon and whom it trusts with its files, and where console logs go. Real
// processes and sockets; VMs on the crosvm stand-in.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "integration/daemon_process.hpp"
#include "integration/guest.hpp"
#include "integration/on_demand.hpp"
#include "integration/other_user.hpp"
#include "support/processes.hpp"
#include "support/subprocess.hpp"
#include "support/temp_dir.hpp"

using namespace crosvisor;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

// A root crosvisord whose crosvm is the stand-in nobody may run; `--shared` lets nobody in.
test::DaemonOptions root_daemon(const test::OtherUser& nobody, std::vector<std::string> args = {}) {
  return {.args = std::move(args),
          .crosvm = (nobody.bin / "crosvm").string(),
          .own_runtime_dir = false};
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
    ++n;
  return n;
}

}  // namespace

TEST_CASE("a fixed CID is unique host-wide across users: root's and nobody's daemons alike") {
  test::OtherUser nobody;
  test::DaemonProcess root(root_daemon(nobody));
  const auto root_vm = root.dir.write(
      "fixed.toml",
      nobody.stand_in_toml(
          "fixed", "", "cid = 61002\nvmm_binary = \"" + (nobody.bin / "crosvm").string() + "\"\n"));
  test::Subprocess held({VM_BINARY, "run", root_vm.string()}, root.env());
  REQUIRE(held.wait_for_line("vm fixed: ready", 20s));
  // nobody's own daemon, started on demand in nobody's runtime directory.
  const auto mine = nobody.write("mine.toml", nobody.stand_in_toml("mine", "", "cid = 61002\n"));
  const auto refused = nobody.vm("run " + mine.string());
  INFO(refused.output);
  CHECK(refused.exit_code == 10);
  CHECK_THAT(refused.output, Catch::Contains("vsock CID 61002 is held by another process on this "
                                             "host (pid "));
  CHECK_THAT(refused.output, Catch::Contains("uid 0)"));
  held.signal(SIGINT);
  REQUIRE(held.wait_exit(20s) == 128 + SIGINT);
  // Given back: now nobody gets it.
  const auto runs = nobody.write(
      "runs.toml",
      nobody.stand_in_toml("runs", "fake_crosvm.exit=0 fake_crosvm.after_ms=100", "cid = 61002\n"));
  const auto ok = nobody.vm("run " + runs.string());
  INFO(ok.output);
  CHECK(ok.exit_code == 0);
  CHECK_THAT(ok.output, Catch::Contains("vm runs: running: pid "));
  CHECK_THAT(ok.output, Catch::Contains(", cid 61002"));
}

TEST_CASE("VM names belong to their owner: two users of a shared daemon may each have 'web'") {
  test::OtherUser nobody;
  test::DaemonProcess root(root_daemon(nobody, {"--shared"}));
  const auto file = nobody.write("web.toml", nobody.stand_in_toml("web"));
  test::Subprocess roots({VM_BINARY, "run", file.string()}, root.env());
  REQUIRE(roots.wait_for_line("vm web: ready", 20s));
  test::Subprocess nobodys(nobody.as_nobody({(nobody.bin / "vm").string(), "run", file.string()},
                                            {"CROSVISOR_SOCKET=" + root.socket.string()}));
  REQUIRE(nobodys.wait_for_line("vm web: ready", 20s));  // not "already running"

  const auto theirs =
      json::parse(nobody.vm("list --json", {"CROSVISOR_SOCKET=" + root.socket.string()}).output);
  REQUIRE(theirs.size() == 1);
  CHECK(theirs[0]["owner_uid"] == test::OtherUser::kUid);
  const auto everyone = root.vm("list --all-users");
  INFO(everyone.output);
  CHECK(count(everyone.output, "\nweb ") == 2);
  CHECK_THAT(everyone.output, Catch::Contains("OWNER"));
  CHECK_THAT(everyone.output, Catch::Contains("root"));
  CHECK_THAT(everyone.output, Catch::Contains("nobody"));
  // Each user's clash is with their own VM only.
  const auto again =
      nobody.vm("run " + file.string(), {"CROSVISOR_SOCKET=" + root.socket.string()});
  CHECK(again.exit_code == 6);
  CHECK_THAT(again.output, Catch::Contains("a VM named 'web' is already running"));
  // Root acts on its own "web" when both exist.
  const auto info = json::parse(root.vm("info web --json").output);
  CHECK(info["owner_uid"] == 0);
  CHECK(root.vm("stop web").exit_code == 0);
  CHECK(roots.wait_exit(20s) == 0);
  CHECK(test::process_alive(nobodys.pid()));  // nobody's still runs
  nobodys.signal(SIGINT);
  CHECK(nobodys.wait_exit(20s) == 128 + SIGINT);
}

TEST_CASE("VMM binaries are found on the user's PATH, and a shared daemon runs only its own") {
  test::OtherUser nobody;
  // `crosvm` exists only on nobody's PATH (nobody.bin). A daemon started from a shell whose PATH
  // lacks it, then used from one whose PATH has it: the lookup follows the asking command's PATH.
  const auto file = nobody.write(
      "path.toml", nobody.stand_in_toml("path", "fake_crosvm.exit=0 fake_crosvm.after_ms=100"));
  const auto without = nobody.vm("run " + file.string(), {"PATH=/usr/bin:/bin"});
  INFO(without.output);
  CHECK(without.exit_code == 10);
  CHECK_THAT(without.output, Catch::Contains("crosvm: not found on PATH (/usr/bin:/bin)"));
  const auto found = nobody.vm("run " + file.string());  // the same daemon, still up
  INFO(found.output);
  CHECK(found.exit_code == 0);
  CHECK_THAT(found.output, !Catch::Contains("started crosvisord"));
  // A daemon serving other users (root, --shared) refuses a client's binary, and says why.
  test::DaemonProcess root(root_daemon(nobody, {"--shared"}));
  const auto named =
      nobody.write("named.toml",
                   nobody.stand_in_toml(
                       "named", "", "vmm_binary = \"" + (nobody.bin / "crosvm").string() + "\"\n"));
  const auto refused =
      nobody.vm("run " + named.string(), {"CROSVISOR_SOCKET=" + root.socket.string()});
  CHECK(refused.exit_code == 7);
  CHECK_THAT(refused.output, Catch::Contains("runs only the VMM binaries it was started with"));
  // The daemon's own user may name one: root, to root's daemon, with --crosvm.
  test::TempDir plain_dir;
  const auto plain_socket = plain_dir / "control.sock";
  test::Subprocess plain({CROSVISORD_BINARY, "--socket", plain_socket.string()},
                         {"PATH=/usr/bin:/bin"});  // no crosvm on its PATH
  REQUIRE(plain.wait_for_line("serving ", 20s));
  const auto flag = test::run_command(
      "CROSVISOR_SOCKET=" + plain_socket.string() + " " + VM_BINARY + " run --crosvm " +
      FAKE_CROSVM_BINARY + " " +
      nobody
          .write("flag.toml",
                 nobody.stand_in_toml("flag", "fake_crosvm.exit=0 fake_crosvm.after_ms=100"))
          .string() +
      " 2>&1");
  INFO(flag.output);
  CHECK(flag.exit_code == 0);
}

TEST_CASE("a VM that vm run started is seen and stopped from another terminal of its user") {
  test::OtherUser nobody;
  const auto file = nobody.write("shared.toml", nobody.stand_in_toml("shared"));
  // Terminal A: `vm run`, in a process tree of its own (the Subprocess is its own group).
  test::Subprocess terminal_a(
      nobody.as_nobody({(nobody.bin / "vm").string(), "run", file.string()}));
  REQUIRE(terminal_a.wait_for_line("vm shared: ready", 20s));
  CHECK_THAT(terminal_a.output(),
             Catch::Contains("started crosvisord at " +
                             (nobody.runtime / "crosvisor" / "control.sock").string()));
  // Terminal B: no socket named, the default one found.
  const auto list = nobody.vm("list");
  CHECK(list.exit_code == 0);
  CHECK_THAT(list.output, Catch::Contains("shared"));
  CHECK_THAT(nobody.vm("info shared").output, Catch::Contains("owner       nobody"));
  CHECK_THAT(nobody.vm("logs shared").output, Catch::Contains("fake-crosvm guest: ready"));
  const auto stop = nobody.vm("stop shared");
  CHECK(stop.exit_code == 0);
  CHECK(terminal_a.wait_exit(20s) == 0);
  CHECK_THAT(terminal_a.output(), Catch::Contains("vm shared: dead (SHUTDOWN)"));
}

TEST_CASE("vm hands its fds only to a daemon it may trust: no /tmp fallback, no strangers") {
  test::OtherUser nobody;
  const auto file = nobody.write("victim.toml", nobody.stand_in_toml("victim"));
  // No runtime directory of its own: refused, and nothing made under /tmp.
  const auto nowhere = test::run_command([&] {
    std::string line;
    for (const auto& word : nobody.as_nobody({(nobody.bin / "vm").string()}, {}, false))
      line += word + " ";
    return line;
  }() + "run " + file.string() + " 2>&1");
  CHECK(nowhere.exit_code == 5);
  CHECK_THAT(nowhere.output, Catch::Contains("no private runtime directory for uid 65534"));
  CHECK_THAT(nowhere.output, Catch::Contains("set XDG_RUNTIME_DIR"));
  CHECK_FALSE(std::filesystem::exists("/tmp/crosvisor-65534"));

  // A directory another user (daemon, uid 1) made, with a listening socket in it.
  const auto squat = nobody.dir / "squat";
  std::filesystem::create_directory(squat);
  REQUIRE(::chown(squat.c_str(), 1, 1) == 0);
  ::chmod(squat.c_str(), 0777);
  UniqueFd trap(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const auto trap_path = squat / "control.sock";
  std::strncpy(address.sun_path, trap_path.c_str(), sizeof(address.sun_path) - 1);
  REQUIRE(::bind(trap.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  REQUIRE(::listen(trap.get(), 8) == 0);
  ::chmod(trap_path.c_str(), 0666);
  const auto squatted =
      nobody.vm("run " + file.string(), {"CROSVISOR_SOCKET=" + trap_path.string()});
  CHECK(squatted.exit_code == 7);
  CHECK_THAT(squatted.output, Catch::Contains("not trusting the crosvisord socket"));
  CHECK(::accept(trap.get(), nullptr, nullptr) < 0);  // it never even connected

  // A socket in nobody's own directory, served by a process of uid 1: found out by SO_PEERCRED
  // before a byte is sent.
  const auto own_dir = nobody.dir / "own";
  std::filesystem::create_directory(own_dir);
  REQUIRE(::chown(own_dir.c_str(), test::OtherUser::kUid, test::OtherUser::kUid) == 0);
  ::chmod(own_dir.c_str(), 0700);
  const auto stranger_path = own_dir / "control.sock";
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  const pid_t stranger = ::fork();
  if (stranger == 0) {
    // Bound as root (only root could, in nobody's 0700 directory), listening as uid 1: the
    // credentials a client sees are those of listen().
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un at{};
    at.sun_family = AF_UNIX;
    std::strncpy(at.sun_path, stranger_path.c_str(), sizeof(at.sun_path) - 1);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&at), sizeof(at)) != 0 ||
        ::chmod(stranger_path.c_str(), 0666) != 0 || ::setresgid(1, 1, 1) != 0 ||
        ::setresuid(1, 1, 1) != 0 || ::listen(fd, 8) != 0)
      ::_exit(1);
    [[maybe_unused]] auto n = ::write(ready[1], "r", 1);
    const int client = ::accept(fd, nullptr, nullptr);
    char byte;
    // 0: the client hung up without sending anything.
    const ssize_t got = client < 0 ? -1 : ::read(client, &byte, 1);
    ::_exit(got == 0 ? 0 : 2);
  }
  ::close(ready[1]);
  char byte;
  REQUIRE(::read(ready[0], &byte, 1) == 1);
  ::close(ready[0]);
  const auto strange =
      nobody.vm("run " + file.string(), {"CROSVISOR_SOCKET=" + stranger_path.string()});
  CHECK(strange.exit_code == 7);
  CHECK_THAT(strange.output, Catch::Contains("runs as uid 1, neither you nor root: not sending it "
                                             "anything"));
  int status = 0;
  REQUIRE(::waitpid(stranger, &status, 0) == stranger);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);  // no byte reached it
}

TEST_CASE("a user finds the host's shared daemon by default when no daemon of its own runs") {
  test::OtherUser nobody;
  test::DaemonProcess root(root_daemon(nobody, {"--shared"}));
  const std::vector<std::string> host{"CROSVISOR_SYSTEM_SOCKET=" + root.socket.string()};
  const auto list = nobody.vm("list", host);
  CHECK(list.exit_code == 0);
  CHECK_THAT(list.output, Catch::StartsWith("NAME"));
  const auto file = nobody.write("hosted.toml", nobody.stand_in_toml("hosted"));
  test::Subprocess run(
      nobody.as_nobody({(nobody.bin / "vm").string(), "run", file.string()}, host));
  REQUIRE(run.wait_for_line("vm hosted: ready", 20s));
  CHECK_THAT(run.output(), !Catch::Contains("started crosvisord"));
  CHECK_THAT(root.vm("list --all-users").output, Catch::Contains("hosted"));
  run.signal(SIGINT);
  CHECK(run.wait_exit(20s) == 128 + SIGINT);
}

TEST_CASE("console logs live per daemon and owner, survive the VM, keep each boot, and rotate") {
  test::OtherUser nobody;
  test::DaemonProcess shared(root_daemon(nobody, {"--shared", "--console-log-max-kib", "8"}));
  test::DaemonProcess other(root_daemon(nobody));
  const auto same = nobody.write("same.toml", nobody.stand_in_toml("same", "fake_crosvm.exit=0"));
  CHECK(shared.vm("run " + same.string()).exit_code == 0);
  CHECK(other.vm("run " + same.string()).exit_code == 0);
  // Two daemons, two logs: beside each one's socket.
  const auto shared_log = shared.dir / "logs" / "0" / "same.log";
  const auto other_log = other.dir / "logs" / "0" / "same.log";
  CHECK_THAT(test::read_file(shared_log), Catch::Contains("fake-crosvm guest: ready"));
  CHECK_THAT(test::read_file(other_log), Catch::Contains("fake-crosvm guest: ready"));
  // The VM is dead and its `vm run` gone; its log stays, and the next boot is appended to it.
  CHECK(shared.vm("run " + same.string()).exit_code == 0);
  CHECK(count(test::read_file(shared_log), "--- crosvisor: same booted at ") == 2);

  // nobody's VM under root's daemon: the log is nobody's to read.
  const auto theirs =
      nobody.write("theirs.toml", nobody.stand_in_toml("theirs", "fake_crosvm.exit=0"));
  CHECK(nobody.vm("run " + theirs.string(), {"CROSVISOR_SOCKET=" + shared.socket.string()})
            .exit_code == 0);
  const auto their_log = shared.dir / "logs" / "65534" / "theirs.log";
  struct stat info {};
  REQUIRE(::stat(their_log.c_str(), &info) == 0);
  CHECK(info.st_uid == test::OtherUser::kUid);
  CHECK((info.st_mode & 0777) == 0600);
  const auto cat = test::run_command([&] {
    std::string line;
    for (const auto& word : nobody.as_nobody({"/bin/cat", their_log.string()}))
      line += word + " ";
    return line;
  }());
  CHECK_THAT(cat.output, Catch::Contains("fake-crosvm guest: ready"));

  // A chatty guest cannot fill the disk: the log rotates at its cap (8 KiB here).
  const auto chatty = nobody.write(
      "chatty.toml", nobody.stand_in_toml("chatty",
                                          "fake_crosvm.chatter=200000 fake_crosvm.exit=0 "
                                          "fake_crosvm.after_ms=500"));
  CHECK(shared.vm("run " + chatty.string()).exit_code == 0);
  const auto chatty_log = shared.dir / "logs" / "0" / "chatty.log";
  REQUIRE(std::filesystem::exists(chatty_log.string() + ".1"));
  CHECK(std::filesystem::file_size(chatty_log) <= 8192);
  CHECK(std::filesystem::file_size(chatty_log.string() + ".1") <= 8192);
  CHECK(std::filesystem::file_size(chatty_log.string() + ".1") >= 4096);
}
