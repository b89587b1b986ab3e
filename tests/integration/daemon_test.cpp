// crosvisord and the `vm` command through the control socket: real processes, real sockets,
// real guests (QEMU) and the crosvm stand-in.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "core/exit_codes.hpp"
#include "integration/daemon_process.hpp"
#include "integration/guest.hpp"
#include "process/fd_passing.hpp"
#include "protocol/framing.hpp"
#include "support/processes.hpp"
#include "support/subprocess.hpp"
#include "support/temp_dir.hpp"

using namespace crosvisor;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

constexpr auto kBoot = 90s;

// A raw connection, for saying what a well-behaved client never would.
class RawClient {
 public:
  explicit RawClient(const std::filesystem::path& path) {
    fd_ = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
    REQUIRE(::connect(fd_.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) ==
            0);
  }
  void send_bytes(const std::string& bytes, const std::vector<int>& fds = {}) {
    auto sent = process::send_with_fds(fd_.get(), bytes, fds);
    REQUIRE(sent.has_value());
    REQUIRE(*sent == bytes.size());
  }
  void send_json(const json& message, const std::vector<int>& fds = {}) {
    send_bytes(protocol::encode_frame(message.dump()), fds);
  }
  // The next frame, or nothing when the daemon closed the connection (or 10 s passed).
  std::optional<json> receive() {
    for (;;) {
      auto frame = decoder_.next();
      REQUIRE(frame.has_value());
      if (frame->has_value())
        return json::parse(**frame);
      pollfd wait{fd_.get(), POLLIN, 0};
      if (::poll(&wait, 1, 10'000) <= 0)
        return std::nullopt;
      char buffer[65536];
      const ssize_t n = ::recv(fd_.get(), buffer, sizeof(buffer), 0);
      if (n <= 0)
        return std::nullopt;
      decoder_.feed(std::string_view(buffer, static_cast<std::size_t>(n)));
    }
  }
  // The error of the next reply ("" when it was not an error).
  std::string error() {
    auto reply = receive();
    REQUIRE(reply.has_value());
    return reply->value("ok", true) ? "" : reply->value("error", "?");
  }
  bool closed_by_daemon() { return !receive().has_value(); }
  int fd() const { return fd_.get(); }

 private:
  UniqueFd fd_;
  protocol::FrameDecoder decoder_;
};

std::size_t fd_count(pid_t pid) {
  return test::open_fds(pid).size();
}

// `pid`'s fds as "N -> target" lines: an fd number reused for something else is another line.
std::set<std::string> fd_lines(pid_t pid) {
  std::set<std::string> lines;
  std::istringstream listed(test::describe_fds(pid));
  for (std::string line; std::getline(listed, line);)
    lines.insert(line);
  return lines;
}

}  // namespace

TEST_CASE("through the daemon: run, list, info, logs -f and stop a real guest") {
  test::require_guest();
  test::DaemonProcess daemon;
  const auto file = daemon.dir.write("web.toml", test::guest_toml("web", ""));
  test::Subprocess run({VM_BINARY, "run", "--console", file.string()}, daemon.env());
  REQUIRE(run.wait_for_line("vm web: ready", kBoot));

  const auto list = daemon.vm("list");
  CHECK(list.exit_code == 0);
  CHECK_THAT(list.output, Catch::Contains("NAME") && Catch::Contains("web") &&
                              Catch::Contains("ready") && Catch::Contains("qemu"));
  const auto listed = json::parse(daemon.vm("list --json").output);
  REQUIRE(listed.size() == 1);
  CHECK(listed[0]["name"] == "web");
  CHECK(listed[0]["cid"].get<std::uint32_t>() >= 3);

  const auto info = json::parse(daemon.vm("info web --json").output);
  CHECK(info["state"] == "ready");
  CHECK(info["pid"].get<int>() > 0);
  // The list shows what the VM last told the daemon: its info, but the uptime, which moves on.
  const auto without_uptime = [](json vm) {
    vm.erase("uptime_ms");
    return vm;
  };
  CHECK(without_uptime(listed[0]) == without_uptime(info));
  std::this_thread::sleep_for(1s);
  const auto later = json::parse(daemon.vm("list --json").output);
  REQUIRE(later.size() == 1);
  CHECK(later[0]["uptime_ms"].get<std::int64_t>() >= info["uptime_ms"].get<std::int64_t>() + 1000);
  const auto by_cid = daemon.vm("info " + std::to_string(info["cid"].get<std::uint32_t>()));
  CHECK_THAT(
      by_cid.output,
      Catch::StartsWith("web\n") &&
          Catch::Contains("kernel      " +
                          (std::filesystem::path(CROSVISOR_GUEST_DIR) / "vmlinuz").string()));

  CHECK_THAT(daemon.vm("logs web -n 50").output, Catch::Contains(test::kGuestReady));
  test::Subprocess follow({VM_BINARY, "logs", "web", "-f", "-n", "50"}, daemon.env());
  REQUIRE(follow.wait_for_line(test::kGuestReady, 10s));

  const auto stop = daemon.vm("stop web");
  CHECK(stop.exit_code == 0);
  CHECK_THAT(stop.output, Catch::Contains("vm web: dead (SHUTDOWN)"));
  CHECK(follow.wait_for_line("crosvisor-guest: power button", 10s));  // followed live
  CHECK(follow.wait_exit(10s) == 0);
  CHECK(run.wait_exit(10s) == 0);
  CHECK(daemon.vm("list --json").output == "[]\n");
}

TEST_CASE("vm logs refuses a debug = none VM clearly, and unknown VMs are errors") {
  test::DaemonProcess daemon;
  const auto file = daemon.dir.write(
      "quiet.toml", test::fake_crosvm_toml("quiet", "", false) + "\n");  // debug = full ...
  std::string text = test::fake_crosvm_toml("quiet", "", false);
  text.replace(text.find("debug = \"full\""), 14, "debug = \"none\"");
  const auto none = daemon.dir.write("none.toml", text);
  test::Subprocess run({VM_BINARY, "run", none.string()}, daemon.env());
  REQUIRE(run.wait_for_line("vm quiet: ready", 20s));
  const auto logs = daemon.vm("logs quiet");
  CHECK(logs.exit_code == 1);
  CHECK_THAT(logs.output, Catch::Contains("its console is not kept"));
  const auto missing = daemon.vm("info nosuch");
  CHECK(missing.exit_code == 5);  // not found
  CHECK_THAT(missing.output, Catch::Contains("no VM named nosuch"));
  (void)file;
}

TEST_CASE("vm run killed with SIGKILL: the daemon stops and reaps its VM") {
  test::DaemonProcess daemon;
  const auto file = daemon.dir.write(
      "orphan.toml", test::fake_crosvm_toml("orphan", "fake_crosvm.powerbtn=ignore", false) +
                         "stop_timeout_s = 0.5\n");
  test::Subprocess run({VM_BINARY, "run", file.string()}, daemon.env());
  auto line = run.wait_for_line("running: pid ", 20s);
  REQUIRE(line.has_value());
  const pid_t vmm = std::stoi(line->substr(line->find("pid ") + 4));
  REQUIRE(run.wait_for_line("vm orphan: ready", 20s));
  run.signal(SIGKILL);
  // The session died with its client: power button (ignored), then the VMM is made to stop.
  CHECK(test::eventually([&] { return !test::process_alive(vmm); }, 15s));
  CHECK(test::eventually([&] { return daemon.vm("list --json").output == "[]\n"; }, 10s));
}

TEST_CASE("the daemon killed with SIGKILL leaves no VMM behind") {
  test::DaemonProcess daemon;
  std::vector<std::unique_ptr<test::Subprocess>> clients;
  for (int i = 0; i < 3; ++i) {
    const std::string name = "held-" + std::to_string(i);
    const auto file = daemon.dir.write(name + ".toml", test::fake_crosvm_toml(name, "", false));
    clients.push_back(std::make_unique<test::Subprocess>(
        std::vector<std::string>{VM_BINARY, "run", file.string()}, daemon.env()));
    REQUIRE(clients.back()->wait_for_line("vm " + name + ": ready", 20s));
  }
  const auto vmms = test::processes_with_cmdline("--name held-");
  REQUIRE(vmms.size() == 3);
  daemon.process->signal(SIGKILL);
  for (const pid_t pid : vmms)
    CHECK(test::eventually([&] { return !test::process_alive(pid); }, 10s));
  for (auto& client : clients)
    CHECK(client->wait_exit(10s).has_value());  // each notices its daemon is gone
}

TEST_CASE("SIGTERM to the daemon stops every VM gracefully, in parallel, then it exits") {
  test::DaemonProcess daemon;
  std::vector<std::unique_ptr<test::Subprocess>> clients;
  for (int i = 0; i < 3; ++i) {
    const std::string name = "term-" + std::to_string(i);
    const auto file = daemon.dir.write(name + ".toml", test::fake_crosvm_toml(name, "", false));
    clients.push_back(std::make_unique<test::Subprocess>(
        std::vector<std::string>{VM_BINARY, "run", file.string()}, daemon.env()));
    REQUIRE(clients.back()->wait_for_line("vm " + name + ": ready", 20s));
  }
  daemon.process->signal(SIGTERM);
  const auto code = daemon.process->wait_exit(20s);
  INFO(daemon.process->output());
  CHECK(code == 0);
  for (int i = 0; i < 3; ++i)
    CHECK_THAT(daemon.process->output(),
               Catch::Contains("vm term-" + std::to_string(i) + ": dead, SHUTDOWN"));
  CHECK(test::processes_with_cmdline("--name term-").empty());
  CHECK_FALSE(std::filesystem::exists(daemon.socket));
}

TEST_CASE("a daemon logging to a file stops every VM on SIGTERM too, and logs it") {
  // --log-file starts spdlog's flusher thread: started before the stop signals were blocked, it
  // took SIGTERM with its default action, and the daemon died on the spot, its VMs unstopped.
  test::TempDir dir;
  const auto socket = dir / "control.sock";
  const auto log = dir / "crosvisord.log";
  test::Subprocess daemon({CROSVISORD_BINARY, "--socket", socket.string(), "--crosvm",
                           FAKE_CROSVM_BINARY, "--state-dir", (dir / "state").string(),
                           "--runtime-dir", (dir / "run").string(), "--log-file", log.string()});
  const auto logged = [&] { return test::read_file(log); };
  REQUIRE(test::eventually([&] { return logged().find("serving ") != std::string::npos; }, 20s));
  const auto file = dir.write("logged.toml", test::fake_crosvm_toml("logged", "", false));
  const auto run = test::run_command("CROSVISOR_SOCKET=" + socket.string() + " " + VM_BINARY +
                                     " run -d " + file.string() + " 2>&1");
  REQUIRE(run.exit_code == 0);

  daemon.signal(SIGTERM);
  CHECK(daemon.wait_exit(20s) == 0);
  INFO(logged());
  CHECK_THAT(logged(), Catch::Contains("stopping 1 VM(s)"));
  CHECK_THAT(logged(), Catch::Contains("exiting"));
  CHECK(test::processes_with_cmdline("--name logged").empty());
  CHECK_FALSE(std::filesystem::exists(socket));
}

TEST_CASE("a live daemon's socket is never stolen, a dead one's is replaced") {
  test::DaemonProcess first;
  test::Subprocess second({CROSVISORD_BINARY, "--socket", first.socket.string(), "--runtime-dir",
                           (first.dir / "run2").string()});
  CHECK(second.wait_exit(10s) == 6);  // conflict
  CHECK_THAT(second.output(), Catch::Contains("another crosvisord is serving this socket"));
  CHECK(first.vm("version").exit_code == 0);

  first.process->signal(SIGKILL);
  CHECK(first.process->wait_exit(10s) == 128 + SIGKILL);
  REQUIRE(std::filesystem::exists(first.socket));  // stale
  test::Subprocess third({CROSVISORD_BINARY, "--socket", first.socket.string(), "--runtime-dir",
                          (first.dir / "run3").string()});
  REQUIRE(third.wait_for_line("serving ", 10s));
  CHECK_THAT(first.vm("version").output, Catch::Contains("crosvisord 0.1.0"));
  // Directory 0700, socket 0600.
  CHECK((std::filesystem::status(first.dir.path()).permissions() &
         std::filesystem::perms::others_all) == std::filesystem::perms::none);
  CHECK((std::filesystem::status(first.socket).permissions() &
         (std::filesystem::perms::group_all | std::filesystem::perms::others_all)) ==
        std::filesystem::perms::none);
}

TEST_CASE("a second daemon on another socket cannot take the first's state, or its VMs") {
  test::DaemonProcess first;
  const auto file = first.dir.write("kept.toml", test::fake_crosvm_toml("kept", "", false));
  test::Subprocess run({VM_BINARY, "run", "-d", file.string()}, first.env());
  REQUIRE(run.wait_exit(20s) == 0);
  const auto vmms = test::processes_with_cmdline("--name kept ");
  REQUIRE(vmms.size() == 1);

  // The same state directory, named: refused before anything of it is touched (the cgroups
  // named after it held the first daemon's VMM, which a second daemon took for a dead one's).
  const auto other = first.dir / "other.sock";
  test::Subprocess second({CROSVISORD_BINARY, "--socket", other.string(), "--crosvm",
                           FAKE_CROSVM_BINARY, "--state-dir", (first.dir / "state").string()});
  CHECK(second.wait_exit(10s) == 6);  // conflict
  CHECK_THAT(second.output(), Catch::Contains("is the state directory of another crosvisord "
                                              "(serving " +
                                              first.socket.string() + ")"));
  CHECK(test::process_alive(vmms.front()));
  CHECK_THAT(first.vm("list").output, Catch::Contains("kept  ready"));

  // None named, at a socket of its own: a state directory of its own beside it.
  test::Subprocess third(
      {CROSVISORD_BINARY, "--socket", other.string(), "--crosvm", FAKE_CROSVM_BINARY});
  REQUIRE(third.wait_for_line("serving ", 10s));
  CHECK_THAT(third.output(), Catch::Contains("from " + other.string() + ".state;"));
  CHECK(std::filesystem::exists(other.string() + ".state/crosvisord.lock"));
  CHECK(test::process_alive(vmms.front()));
  CHECK(first.vm("stop kept").exit_code == 0);
}

TEST_CASE("another user's session cannot see or stop the first user's VMs") {
  test::DaemonProcess daemon({.args = {"--shared"}});
  ::chmod(daemon.dir.path().c_str(), 0711);  // the test's temporary directory, for `nobody`
  const auto file = daemon.dir.write("mine.toml", test::fake_crosvm_toml("mine", "", false));
  test::Subprocess run({VM_BINARY, "run", file.string()}, daemon.env());
  REQUIRE(run.wait_for_line("vm mine: ready", 20s));

  // `nobody` runs its own copy of vm: the build tree may sit where it cannot look.
  const auto vm_copy = daemon.dir / "vm";
  std::filesystem::copy_file(VM_BINARY, vm_copy);
  std::filesystem::permissions(
      vm_copy, std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
                   std::filesystem::perms::group_exec | std::filesystem::perms::others_read |
                   std::filesystem::perms::others_exec);
  const std::string as_nobody =
      "setpriv --reuid=65534 --regid=65534 --clear-groups " + vm_copy.string();
  const auto list =
      test::run_command(as_nobody + " --socket " + daemon.socket.string() + " list --json 2>&1");
  CHECK(list.exit_code == 0);
  CHECK(list.output == "[]\n");
  const auto all = test::run_command(as_nobody + " --socket " + daemon.socket.string() +
                                     " list --all-users 2>&1");
  CHECK(all.exit_code == 7);  // not permitted
  CHECK_THAT(all.output, Catch::Contains("needs root or the daemon's own user"));
  const auto stop =
      test::run_command(as_nobody + " --socket " + daemon.socket.string() + " stop mine 2>&1");
  CHECK(stop.exit_code == 5);  // exactly as for a VM that does not exist
  CHECK_THAT(stop.output, Catch::Contains("no VM named mine"));
  CHECK_THAT(daemon.vm("list").output, Catch::Contains("mine"));  // still running
  CHECK_THAT(daemon.vm("list --all-users").output, Catch::Contains("mine"));
}

TEST_CASE("malformed requests and bad fds: each refused, the daemon and a good session go on") {
  test::DaemonProcess daemon;
  const pid_t pid = daemon.process->pid();
  RawClient good(daemon.socket);
  const auto ping_ok = [&] {
    good.send_json({{"id", 1}, {"op", "ping"}});
    auto reply = good.receive();
    return reply && reply->value("pong", false);
  };
  REQUIRE(ping_ok());
  const std::size_t fds_before = fd_count(pid);
  const std::string fds_listed_before = test::describe_fds(pid);
  const auto held_before = fd_lines(pid);
  const auto kernel = daemon.dir.write("vmlinuz", "kernel");
  const auto open_file = [&](int flags) { return ::open(kernel.c_str(), flags | O_CLOEXEC); };
  const json vm = {{"name", "bad"}, {"kernel", {{"fd", 0}}}, {"vmm", "crosvm"}};

  struct Case {
    std::string what;
    std::function<void(RawClient&)> send;
    std::string expected;  // the error's text; "closed" when the session must be closed
  };
  const auto frame = [](std::string text) { return protocol::encode_frame(text); };
  std::vector<Case> cases = {
      {"not JSON", [&](RawClient& c) { c.send_bytes(frame("hello")); }, "not JSON"},
      {"a JSON array", [&](RawClient& c) { c.send_bytes(frame("[1,2]")); }, "JSON object"},
      {"no id",
       [&](RawClient& c) {
         c.send_json({{"op", "ping"}});
       },
       "needs an 'id'"},
      {"a negative id",
       [&](RawClient& c) {
         c.send_json({{"id", -4}, {"op", "ping"}});
       },
       "needs an 'id'"},
      {"no op",
       [&](RawClient& c) {
         c.send_json({{"id", 1}});
       },
       "needs an 'op'"},
      {"an unknown op",
       [&](RawClient& c) {
         c.send_json({{"id", 1}, {"op", "format-disk"}});
       },
       "unknown op"},
      {"an unknown field",
       [&](RawClient& c) {
         c.send_json({{"id", 1}, {"op", "ping"}, {"x", 1}});
       },
       "not a field of 'ping'"},
      {"a wrong type",
       [&](RawClient& c) {
         c.send_json({{"id", 1}, {"op", "list"}, {"all_users", 1}});
       },
       "must be true or false"},
      {"create without a VM",
       [&](RawClient& c) {
         c.send_json({{"id", 1}, {"op", "create"}});
       },
       "needs 'vm'"},
      {"create with a relative VMM binary",
       [&](RawClient& c) {
         json v = vm;
         v["vmm_binary"] = "bin/sh";
         c.send_json({{"id", 1}, {"op", "create"}, {"vm", v}}, {open_file(O_RDONLY)});
       },
       "vm.vmm_binary: must be an absolute path"},
      {"an fd index out of range",
       [&](RawClient& c) {
         c.send_json({{"id", 1}, {"op", "create"}, {"vm", vm}});
       },
       "only 0 fds came"},
      {"one fd too many",
       [&](RawClient& c) {
         c.send_json({{"id", 1}, {"op", "create"}, {"vm", vm}},
                     {open_file(O_RDONLY), open_file(O_RDONLY)});
       },
       "nothing names it"},
      {"an fd used twice",
       [&](RawClient& c) {
         json v = vm;
         v["initrd"] = {{"fd", 0}};
         c.send_json({{"id", 1}, {"op", "create"}, {"vm", v}}, {open_file(O_RDONLY)});
       },
       "used twice"},
      {"a directory as the kernel",
       [&](RawClient& c) {
         c.send_json({{"id", 1}, {"op", "create"}, {"vm", vm}},
                     {::open(daemon.dir.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)});
       },
       "is a directory"},
      {"a socket as a disk",
       [&](RawClient& c) {
         json v = vm;
         v["disks"] = json::array({{{"fd", 1}}});
         c.send_json({{"id", 1}, {"op", "create"}, {"vm", v}},
                     {open_file(O_RDONLY), ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)});
       },
       "is a socket"},
      {"a bad VM name",
       [&](RawClient& c) {
         json v = vm;
         v["name"] = "../../etc";
         c.send_json({{"id", 1}, {"op", "create"}, {"vm", v}}, {open_file(O_RDONLY)});
       },
       "is not a VM name"},
      {"fds with a request that takes none",
       [&](RawClient& c) {
         c.send_json({{"id", 1}, {"op", "ping"}}, {open_file(O_RDONLY)});
       },
       "takes none"},
      {"a VM that does not exist",
       [&](RawClient& c) {
         c.send_json({{"id", 1}, {"op", "stop"}, {"vm", "ghost"}});
       },
       "no VM named ghost"},
      {"a CID out of range",
       [&](RawClient& c) {
         c.send_json({{"id", 1}, {"op", "info"}, {"vm", "99999999999"}});
       },
       "out of range"},
      {"JSON nested 500 000 levels deep",
       [&](RawClient& c) {
         c.send_bytes(frame(R"({"id":1,"op":"create","vm":{"a":)" + std::string(500'000, '[')));
       },
       "nests deeper than 64"},
      {"an O_PATH fd as the kernel",
       [&](RawClient& c) {
         c.send_json({{"id", 1}, {"op", "create"}, {"vm", vm}}, {open_file(O_PATH)});
       },
       "O_PATH"},
      {"an empty frame", [&](RawClient& c) { c.send_bytes(std::string(4, '\0')); }, "closed"},
      {"an oversized frame", [&](RawClient& c) { c.send_bytes("\x7f\xff\xff\xff{"); }, "closed"},
      {"40 fds with a request that takes none",
       [&](RawClient& c) {
         std::vector<int> many;
         for (int i = 0; i < 40; ++i)
           many.push_back(open_file(O_RDONLY));
         c.send_json({{"id", 1}, {"op", "ping"}}, many);
         for (int fd : many)
           ::close(fd);
       },
       "40 fds came with a request that takes none"},
  };
  for (auto& c : cases) {
    INFO(c.what);
    RawClient bad(daemon.socket);
    c.send(bad);
    if (c.expected == "closed") {
      // An error reply may come first; then the session is closed.
      auto reply = bad.receive();
      if (reply)
        CHECK(reply->value("ok", true) == false);
      CHECK(bad.closed_by_daemon());
    } else {
      CHECK_THAT(bad.error(), Catch::Contains(c.expected));
      // A refused request does not end the session.
      bad.send_json({{"id", 2}, {"op", "ping"}});
      CHECK(bad.error().empty());
    }
    CHECK(ping_ok());
  }

  // Half a frame, then the client goes away.
  {
    RawClient truncated(daemon.socket);
    truncated.send_bytes(std::string("\0\0\0\x40{\"id\"", 10));
  }
  // A client that sends requests and never reads the replies: it is not read from until it
  // does (nothing is dropped, nothing closed), and the others are served meanwhile.
  {
    RawClient deaf(daemon.socket);
    const std::string ping = protocol::encode_frame(R"({"id":1,"op":"ping"})");
    std::string burst;
    for (int i = 0; i < 1000; ++i)
      burst += ping;
    ::fcntl(deaf.fd(), F_SETFL, O_NONBLOCK);
    std::size_t pings = 0;
    bool closed = false;
    const auto started = std::chrono::steady_clock::now();
    // Until the daemon stops taking them: its replies wait, and so do our requests.
    for (int stalled = 0; stalled < 100 && !closed;) {
      const ssize_t n = ::send(deaf.fd(), burst.data(), burst.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EAGAIN) {
        ++stalled;
        std::this_thread::sleep_for(5ms);
        continue;
      }
      if (n < 0) {
        closed = true;
        break;
      }
      pings += static_cast<std::size_t>(n) / ping.size();  // whole frames, give or take one
      if (std::chrono::steady_clock::now() - started > 30s)
        break;
    }
    CHECK_FALSE(closed);
    CHECK(ping_ok());  // another session is served
    CHECK(fd_count(pid) < fds_before + 10);
    // Now it reads: every reply comes, and its session goes on.
    ::fcntl(deaf.fd(), F_SETFL, 0);
    std::size_t pongs = 0;
    while (pongs + 1000 < pings) {
      auto reply = deaf.receive();
      REQUIRE(reply.has_value());
      pongs += reply->value("pong", false);
    }
    INFO("sent " << pings << " pings, read " << pongs << " pongs");
    CHECK(pongs > 0);
  }
  CHECK(ping_ok());
  // Every fd that came with a refused request was closed; every closed session is gone: the
  // daemon holds nothing it did not hold before. (Not "as many as before": once, in a sanitized
  // run beside another test, it still held a pipe of something of its own start when they were
  // counted, closed since.)
  const auto nothing_new = [&] {
    const auto now = fd_lines(pid);
    return std::includes(held_before.begin(), held_before.end(), now.begin(), now.end());
  };
  CHECK(test::eventually(nothing_new, 10s));
  INFO("daemon fds before:\n" << fds_listed_before << "now:\n" << test::describe_fds(pid));
  CHECK(nothing_new());
}

TEST_CASE("an error reply carries its kind, and vm exits with that kind's code, never the text's") {
  test::DaemonProcess daemon;
  RawClient client(daemon.socket);
  struct Case {
    json request;
    ErrorKind kind;
  };
  const auto file = daemon.dir.write("up.toml", test::fake_crosvm_toml("up", ""));
  test::Subprocess up({VM_BINARY, "run", file.string()}, daemon.env());
  REQUIRE(up.wait_for_line(": ready", 30s));
  const std::vector<Case> cases = {
      {{{"id", 1}, {"op", "stop"}, {"vm", "nosuch"}}, ErrorKind::not_found},
      {{{"id", 2}, {"op", "format-disk"}}, ErrorKind::protocol},
  };
  for (const auto& c : cases) {
    INFO(c.request.dump());
    client.send_json(c.request);
    const auto reply = client.receive();
    REQUIRE(reply.has_value());
    CHECK(reply->value("ok", true) == false);
    CHECK(reply->value("kind", std::string()) == kind_name(c.kind));
  }
  // The same kinds, end to end through the command: its exit code is the kind's
  // (core/exit_codes.hpp).
  CHECK(daemon.vm("stop nosuch").exit_code == exit_code_for(ErrorKind::not_found));
  const auto again = daemon.vm("run " + file.string());
  CHECK(again.exit_code == exit_code_for(ErrorKind::conflict));
  CHECK_THAT(again.output, Catch::Contains("already"));
  up.signal(SIGINT);
  CHECK(up.wait_exit(30s) == 128 + SIGINT);
}
