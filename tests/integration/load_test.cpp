// Under load and hostile users: a paused reader never loses its VM, one user at its limits cannot
// close, starve or lock out another, huge and deep inputs are refused with their reason, every
// documented limit is the real one, and failed VM lifecycles leave the daemon's memory flat.
// Real processes; VMs on the crosvm stand-in.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "integration/daemon_process.hpp"
#include "integration/guest.hpp"
#include "integration/other_user.hpp"
#include "process/fd_passing.hpp"
#include "protocol/framing.hpp"
#include "support/processes.hpp"
#include "support/subprocess.hpp"

using namespace crosvisor;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

// A connection that speaks the protocol by hand.
struct Raw {
  UniqueFd fd;
  protocol::FrameDecoder decoder;
  explicit Raw(const std::filesystem::path& path) {
    fd = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
    REQUIRE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  }
  void send(const json& message, const std::vector<int>& fds = {}) {
    const auto frame = protocol::encode_frame(message.dump());
    REQUIRE(process::send_with_fds(fd.get(), frame, fds).has_value());
  }
  std::optional<json> receive(int timeout_ms = 10'000) {
    for (;;) {
      auto frame = decoder.next();
      REQUIRE(frame.has_value());
      if (frame->has_value())
        return json::parse(**frame);
      pollfd wait{fd.get(), POLLIN, 0};
      if (::poll(&wait, 1, timeout_ms) <= 0)
        return std::nullopt;
      char buffer[65536];
      const ssize_t n = ::recv(fd.get(), buffer, sizeof(buffer), 0);
      if (n <= 0)
        return std::nullopt;
      decoder.feed(std::string_view(buffer, static_cast<std::size_t>(n)));
    }
  }
};

std::string stand_in_keys(const std::string& params = "") {
  std::string keys = test::fake_crosvm_toml("x", params, false);
  return keys.substr(keys.find('\n') + 1);
}

}  // namespace

TEST_CASE("a vm run stopped for 10 s under a chatty guest keeps its VM: 16 of 16") {
  test::DaemonProcess daemon({.own_runtime_dir = false, .quiet = true});
#ifdef CROSVISOR_SANITIZED
  // Under ASan 16 stand-ins at 600 KB/s outrun the daemon on 2 cores. The reactor's flow control
  // bounds what waits in a VM's actor, but not yet what waits in its proxies and sessions, where a
  // death can sit behind a backlog of lines (issue 24): 4 at a third of the rate show the same
  // behaviour (at the full rate, the deaths of a sanitized daemon's VMs came after 60 s).
  constexpr int kVms = 4;
  const std::string chatter = "fake_crosvm.chatter=200000";
#else
  constexpr int kVms = 16;
  const std::string chatter = "fake_crosvm.chatter=600000";
#endif
  std::vector<std::unique_ptr<test::Subprocess>> runs;
  for (int i = 0; i < kVms; ++i) {
    const std::string name = "chatty-" + std::to_string(i);
    const auto file = daemon.dir.write(name + ".toml", test::fake_crosvm_toml(name, chatter));
    runs.push_back(std::make_unique<test::Subprocess>(
        std::vector<std::string>{VM_BINARY, "run", "--console", file.string()}, daemon.env()));
  }
  for (auto& run : runs)
    REQUIRE(run->wait_for_line(": ready", 30s));
  for (auto& run : runs)
    run->signal(SIGSTOP);  // Ctrl-Z
  std::this_thread::sleep_for(10s);
  for (auto& run : runs)
    run->signal(SIGCONT);
  const auto list = daemon.vm("list --json");
  INFO(list.output);
  REQUIRE(list.exit_code == 0);
  const auto listed = json::parse(list.output);
  std::size_t alive = 0;
  for (const auto& vm : listed)
    alive += vm["state"] == "ready";
  INFO(listed.dump(1));
  CHECK(alive == kVms);
  for (auto& run : runs) {
    const std::string output = run->output();
    INFO(output.substr(output.size() > 3000 ? output.size() - 3000 : 0));
    CHECK(
        run->wait_for_line("console lines were dropped while this terminal was not reading", 20s));
  }
  for (auto& run : runs)
    run->signal(SIGINT);
  // Waited for together: a chatty client whose output nobody reads would block on it, as a
  // terminal never lets it.
  std::vector<std::optional<int>> exits(runs.size());
  test::eventually(
      [&] {
        bool all = true;
        for (std::size_t i = 0; i < runs.size(); ++i) {
          if (!exits[i])
            exits[i] = runs[i]->wait_exit(20ms);
          all = all && exits[i].has_value();
        }
        return all;
      },
      60s, 1ms);
  for (const auto& code : exits)
    CHECK(code == 128 + SIGINT);
}

TEST_CASE("one user at its limits refuses only itself: sessions, VMs, fds, and room for root") {
  test::OtherUser nobody;
  test::DaemonProcess daemon({.args = {"--shared", "--max-sessions", "6", "--max-sessions-per-user",
                                       "4", "--max-vms-per-user", "3", "--max-fds-per-user", "40"},
                              .own_runtime_dir = false,
                              .quiet = true});
  const std::vector<std::string> at{"CROSVISOR_SOCKET=" + daemon.socket.string()};
  // Sessions: nobody holds four, the fifth is refused with the reason; root is served.
  std::vector<std::unique_ptr<test::Subprocess>> held;
  const auto hold = [&] {
    held.push_back(std::make_unique<test::Subprocess>(
        nobody.as_nobody({SOCKET_HOLDER_BINARY, daemon.socket.string()})));
    REQUIRE(held.back()->wait_for_line("held", 10s));
  };
  for (int i = 0; i < 4; ++i)
    hold();
  std::this_thread::sleep_for(200ms);
  const auto fifth = nobody.vm("list", at);
  CHECK(fifth.exit_code == 8);
  CHECK_THAT(fifth.output, Catch::Contains("you have 4 sessions open with this crosvisord, the "
                                           "most one user may"));
  CHECK(daemon.vm("list").exit_code == 0);
  held.clear();
  std::this_thread::sleep_for(300ms);

  // VMs: the fourth of a fleet is refused, the fleet says why; root's VM starts.
  const auto fleet = nobody.write(
      "four.toml", "[defaults]\n" +
                       nobody.stand_in_toml("x").substr(nobody.stand_in_toml("x").find('\n') + 1) +
                       "[[vm]]\nname = \"n-{index}\"\ncount = 4\n");
  const auto up = nobody.vm("fleet up " + fleet.string(), at);
  INFO(up.output);
  CHECK(up.exit_code == 1);
  CHECK_THAT(up.output, Catch::Contains("you have 3 VMs in this crosvisord, the most one user may "
                                        "(--max-vms-per-user 3)"));
  const auto root_vm = daemon.dir.write(
      "rootvm.toml",
      test::fake_crosvm_toml("rootvm", "fake_crosvm.exit=0 fake_crosvm.after_ms=50"));
  CHECK(daemon.vm("run " + root_vm.string()).exit_code == 0);
  CHECK(nobody.vm("fleet down", at).exit_code == 0);

  // File descriptors: a VM whose files would pass the user's share is refused, naming it.
  std::string partitions = "partitions = [";
  for (int i = 0; i < 30; ++i) {
    const auto part = nobody.write("p" + std::to_string(i) + ".img", std::string(4096, 'p'));
    partitions += std::string(i ? ", " : " ") + "{ label = \"p" + std::to_string(i) +
                  "\", path = \"" + part.string() + "\" }";
  }
  const auto wide =
      nobody.write("wide.toml", nobody.stand_in_toml("wide") + "[[disks]]\n" + partitions + " ]\n");
  const auto refused = nobody.vm("run " + wide.string(), at);
  CHECK(refused.exit_code == 8);  // refused before it starts: a limit
  CHECK_THAT(refused.output, Catch::Contains("of the 40 one user may (--max-fds-per-user)"));

  // The daemon full but for root's room: root still gets in.
  held.clear();
  test::DaemonProcess full_daemon(
      {.args = {"--shared", "--max-sessions", "3", "--max-sessions-per-user", "10"},
       .own_runtime_dir = false,
       .quiet = true});
  const auto hold_on = [&](const test::DaemonProcess& d) {
    held.push_back(std::make_unique<test::Subprocess>(
        nobody.as_nobody({SOCKET_HOLDER_BINARY, d.socket.string()})));
    REQUIRE(held.back()->wait_for_line("held", 10s));
  };
  for (int i = 0; i < 3; ++i)
    hold_on(full_daemon);
  // "held" means connected; the daemon counts a session once its I/O thread has taken it,
  // which under the sanitizers and a busy machine took longer than a fixed pause.
  test::CommandResult full;
  CHECK(test::eventually(
      [&] {
        full = nobody.vm("list", {"CROSVISOR_SOCKET=" + full_daemon.socket.string()});
        return full.exit_code == 8;
      },
      10s));
  CHECK_THAT(full.output, Catch::Contains("crosvisord serves 3 sessions, the most it may "
                                          "(--max-sessions)"));
  CHECK(full_daemon.vm("list").exit_code == 0);  // the fourth session: root's
}

TEST_CASE("a half-sent request has a deadline, and a pipelining client cannot starve another") {
  test::DaemonProcess daemon(
      {.args = {"--request-deadline", "1"}, .own_runtime_dir = false, .quiet = true});
  Raw half(daemon.socket);
  REQUIRE(::send(half.fd.get(), "\0\0", 2, MSG_NOSIGNAL) == 2);
  auto refusal = half.receive(5'000);
  REQUIRE(refusal.has_value());
  CHECK(refusal->value("error", "") == "a request was left half-sent for 1 s");
  CHECK_FALSE(half.receive(5'000).has_value());  // then closed

  // A client pipelining pings as fast as it can: another client is still answered.
  std::atomic<bool> flooding{true};
  std::thread flood([&] {
    Raw greedy(daemon.socket);
    const std::string ping = protocol::encode_frame(R"({"id":1,"op":"ping"})");
    std::string burst;
    for (int i = 0; i < 500; ++i)
      burst += ping;
    ::fcntl(greedy.fd.get(), F_SETFL, O_NONBLOCK);
    char sink[65536];
    while (flooding) {
      [[maybe_unused]] auto sent =
          ::send(greedy.fd.get(), burst.data(), burst.size(), MSG_NOSIGNAL);
      while (::recv(greedy.fd.get(), sink, sizeof(sink), 0) > 0) {
      }
    }
  });
  std::this_thread::sleep_for(300ms);
  Raw other(daemon.socket);
  for (int i = 0; i < 50; ++i) {
    other.send({{"id", i}, {"op", "ping"}});
    auto pong = other.receive(5'000);
    REQUIRE(pong.has_value());
    CHECK(pong->value("pong", false));
  }
  flooding = false;
  flood.join();
}

TEST_CASE("deep and huge inputs are refused with their place and reason, and crash nothing") {
  test::TempDir dir;
  std::string key = "a";
  for (int i = 0; i < 100'000; ++i)
    key += ".a";
  const auto deep = dir.write("deep.toml", "name = \"x\"\nkernel = \"k\"\n" + key + " = 1\n");
  for (const auto& command :
       {std::string(VM_BINARY) + " run ", std::string(VM_BINARY) + " fleet check ",
        std::string(CROSVISORD_BINARY) + " --socket " + (dir / "s.sock").string() + " "}) {
    const auto result = test::run_command(command + deep.string() + " 2>&1");
    INFO(command << ": " << result.output);
    CHECK(result.exit_code == 3);
    CHECK_THAT(result.output, Catch::Contains("deep.toml:3:1: a key of 100001 dotted parts"));
  }
  // A kernel command line of 2 MiB: said at its key, not as a broken pipe or E2BIG later.
  std::string text = test::fake_crosvm_toml("big", "");
  const auto at = text.find("params = \"");
  text.insert(at + 10, std::string(2 << 20, 'p'));
  const auto big = test::run_command(std::string(VM_BINARY) + " run " +
                                     dir.write("big.toml", text).string() + " 2>&1");
  CHECK(big.exit_code == 3);
  const auto length = std::to_string(test::kFakeCrosvmParams.size() + (2 << 20));
  CHECK_THAT(big.output, Catch::Contains("key 'params': the kernel command line is " + length +
                                         " bytes; the kernel takes at most 2047"));
  // A fleet whose description would pass a request's 1 MiB: refused by the client, with why.
  test::DaemonProcess daemon({.own_runtime_dir = false, .quiet = true});
  std::string fleet = "[defaults]\n" + stand_in_keys() + "[[vm]]\nname = \"v-{index}\"\n";
  fleet += "count = 5000\n";
  const auto huge = daemon.vm("fleet up " + dir.write("huge.toml", fleet).string());
  CHECK(huge.exit_code == 8);
  CHECK_THAT(huge.output, Catch::Contains("the request (fleet_up) is "));
  CHECK_THAT(huge.output, Catch::Contains("more than the 1048576 a request may be: split the "
                                          "fleet into several fleet files"));
}

TEST_CASE("every documented limit is the real one: 64 partitions, 300 files in one fleet") {
  test::DaemonProcess daemon({.own_runtime_dir = false, .quiet = true});
  test::TempDir images;
  std::string partitions = "partitions = [";
  for (int i = 0; i < 64; ++i) {
    const auto part = images.write("p" + std::to_string(i) + ".img", std::string(4096, 'p'));
    partitions += std::string(i ? ", " : " ") + "{ label = \"p" + std::to_string(i) +
                  "\", path = \"" + part.string() + "\" }";
  }
  const auto wide = daemon.dir.write(
      "wide.toml", test::fake_crosvm_toml("wide", "fake_crosvm.exit=0 fake_crosvm.after_ms=100") +
                       "[[disks]]\n" + partitions + " ]\n");
  const auto run = daemon.vm("run --console " + wide.string());
  INFO(run.output);
  CHECK(run.exit_code == 0);
  CHECK_THAT(run.output, Catch::Contains("composite, 66 components"));  // header, 64, footer

  // One request carrying more fds than one sendmsg may: spread over several.
  std::string fleet = "[defaults]\n" + stand_in_keys();
  for (int i = 0; i < 300; ++i) {
    const auto disk = images.write("d" + std::to_string(i) + ".img", std::string(4096, 'd'));
    fleet += "[[vm]]\nname = \"f" + std::to_string(i) + "\"\ndisks = [ { path = \"" +
             disk.string() + "\", writable = true } ]\n";
  }
  const auto up = daemon.vm("fleet up " + daemon.dir.write("many.toml", fleet).string());
  INFO(up.output.substr(up.output.size() > 3000 ? up.output.size() - 3000 : 0));
  CHECK(up.exit_code == 0);
  CHECK_THAT(up.output, Catch::Contains("300 of 300 ready"));
  CHECK(daemon.vm("fleet down").exit_code == 0);

  // A hard RLIMIT_NOFILE under the 4096 a VMM is given: the VMM gets what there is.
  test::TempDir low_dir;
  const auto low_socket = low_dir / "control.sock";
  test::Subprocess low({"/usr/bin/prlimit", "--nofile=1024:1024", CROSVISORD_BINARY, "--socket",
                        low_socket.string(), "--crosvm", FAKE_CROSVM_BINARY});
  REQUIRE(low.wait_for_line("serving ", 20s));
  const auto small = test::run_command(
      "CROSVISOR_SOCKET=" + low_socket.string() + " " + VM_BINARY + " run " +
      daemon.dir
          .write("small.toml",
                 test::fake_crosvm_toml("small", "fake_crosvm.exit=0 fake_crosvm.after_ms=50"))
          .string() +
      " 2>&1");
  INFO(small.output);
  CHECK(small.exit_code == 0);
}

TEST_CASE("failed VM lifecycles leave the daemon's memory flat") {
  // Under AddressSanitizer freed memory waits in a quarantine (256 MiB) before reuse, which would
  // look like growth: none here, so RSS means what it does in a release build.
  test::DaemonProcess daemon({.environment = {"ASAN_OPTIONS=quarantine_size_mb=0"},
                              .own_runtime_dir = false,
                              .quiet = true});
  const auto kernel = daemon.dir.write("k", "kernel");
  Raw client(daemon.socket);
  const json vm = {{"name", "f"},
                   {"vmm", "crosvm"},
                   {"kernel", {{"fd", 0}}},
                   {"params", "console=ttyS0 fake_crosvm.fail=1"},
                   {"debug", "full"}};
  const auto lifecycles = [&](int n) {
    for (int i = 0; i < n; ++i) {
      const int fd = ::open(kernel.c_str(), O_RDONLY | O_CLOEXEC);
      client.send({{"id", i}, {"op", "create"}, {"vm", vm}}, {fd});
      ::close(fd);
      for (;;) {
        auto message = client.receive();
        REQUIRE(message.has_value());
        if (message->value("state", "") == "dead")
          break;
      }
    }
  };
#ifdef CROSVISOR_SANITIZED
  // ASan's allocator keeps freed chunks on per-size-class lists that grow with fragmentation
  // (2.7 MiB over 2000 lifecycles measured); a leak of the size this test guards against is
  // bigger still there (its redzones), so fewer rounds and a wider bound tell them apart.
  constexpr int kRounds = 1000;
  constexpr std::size_t kNoiseKib = 3 * 1024;
#else
  constexpr int kRounds = 2000;
  constexpr std::size_t kNoiseKib = 1024;
#endif
  lifecycles(500);  // the allocator's and CAF's own warm-up
  const auto before = daemon.rss_kib();
  lifecycles(kRounds);
  const auto after = daemon.rss_kib();
  INFO("RSS " << before << " KiB after 500 lifecycles, " << after << " KiB after "
              << 500 + kRounds);
  // Before the fix, each lifecycle kept about 2.6 KiB (a dead VM's actor, held by a monitor
  // left on the service): 2000 would be over 5 MiB. Allocator noise stays well under 1 MiB.
  CHECK(after < before + kNoiseKib);
}

TEST_CASE(
    "a user filling the daemon's fd table is refused before root is: root keeps its reserve") {
  test::OtherUser nobody;
  // 600 fds in all, the last 256 of them root's: nobody's VMs stop well before.
  test::TempDir dir;
  ::chmod(dir.path().c_str(), 0711);
  const auto socket = dir / "control.sock";
  test::Subprocess daemon({"/usr/bin/prlimit", "--nofile=600:600", CROSVISORD_BINARY, "--socket",
                           socket.string(), "--shared", "--crosvm", FAKE_CROSVM_BINARY,
                           "--max-vms-per-user", "1000", "--max-fds-per-user", "100000"});
  REQUIRE(daemon.wait_for_line("serving ", 20s));
  std::string keys = nobody.stand_in_toml("x");
  keys = keys.substr(keys.find('\n') + 1);
  const auto fleet = nobody.write(
      "fill.toml", "[defaults]\n" + keys + "[[vm]]\nname = \"fill-{index}\"\ncount = 80\n");
  const std::vector<std::string> at{"CROSVISOR_SOCKET=" + socket.string()};
  const auto up = nobody.vm("fleet up " + fleet.string(), at);
  INFO(up.output.substr(up.output.size() > 2000 ? up.output.size() - 2000 : 0));
  CHECK(up.exit_code == 1);
  CHECK_THAT(up.output, Catch::Contains("and keeps the last 256 for root: try again later"));
  // Root's request still finds descriptors.
  const auto root_vm = dir.write(
      "root.toml", test::fake_crosvm_toml("rootvm", "fake_crosvm.exit=0 fake_crosvm.after_ms=50"));
  const auto root_run = test::run_command("CROSVISOR_SOCKET=" + socket.string() + " " + VM_BINARY +
                                          " run " + root_vm.string() + " 2>&1");
  INFO(root_run.output);
  CHECK(root_run.exit_code == 0);
  CHECK(nobody.vm("fleet down", at).exit_code == 0);
}
