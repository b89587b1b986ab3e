// TEST DOUBLE: fake-crosvm, a stand-in for crosvm in tests and benchmarks (crosvm cannot be
// installed on the machines that run them). It boots nothing. It parses the crosvm command line
// as crosvm does (exit 35 on what crosvm refuses), checks every fd and composite disk it is given
// (exit 1 on what crosvm would fail on, and on leaked fds), writes a few console lines that play
// the guest, serves the control socket ("Powerbtn", "Exit"), and exits with crosvm's codes.
//
// The "guest" is scripted through markers in --params, the kernel command line:
//   fake_crosvm.fail=CODE      exit CODE before the guest prints anything (a failed start)
//   fake_crosvm.exit=CODE      once ready, exit CODE: 0 power-off, 32 reset, 33 crash, 34 panic,
//                              36 watchdog, 1 error (32..36 become 0 without --extended-status)
//   fake_crosvm.after_ms=MS    wait this long before fake_crosvm.exit (default 0)
//   fake_crosvm.powerbtn=ignore  the guest ignores the ACPI power button
//   fake_crosvm.boot_ms=MS     the guest takes MS to boot before it says it is ready (a VMM that
//                              answers nothing meanwhile, as a guest without ACPI yet ignores
//                              the power button: a stop waits for it)
// With a console input (--serial ...,input=PATH), the guest echoes what it reads, as a terminal
// does, and answers each line it reads with "fake-crosvm guest: read LINE".
//   fake_crosvm.chatter=BYTES  once ready, the guest prints about BYTES bytes of console per
//                              second, in 100-byte numbered lines (a chatty guest)
//   fake_crosvm.flood=BYTES    once ready, on each SIGUSR1 the guest prints BYTES bytes of
//                              console as fast as it can, in 100-byte numbered lines written
//                              4 KiB at a time, then "fake-crosvm guest: flooded BYTES bytes,
//                              longest write W us, writes N" (W: its longest wait on a full
//                              console, as a guest's serial driver waits on a slow UART)
//   fake_crosvm.then=reboot    once ready (after after_ms), the guest reboots: crosvm exits 32
//                              for a keyboard, CF9 or ACPI reset, but 0 for a triple fault, which
//                              is what the kernel's reboot=t does (KVM_EXIT_SHUTDOWN is a stop)
//   fake_crosvm.then=panic     the guest panics: 34 through the pvpanic PCI device; with
//                              fake_crosvm.pvpanic=absent (no driver in the guest) the panic
//                              reboots the guest (panic=-1), as fake_crosvm.then=reboot
//   fake_crosvm.powerbtn=unsupported  the VM has no power button (crosvm on aarch64, which has
//                              no ACPI PM device): Powerbtn is answered with an error
//   fake_crosvm.write_qcow2=PATH  once ready, the guest writes a qcow2 header naming PATH as
//                              its backing file into sector 0 of its first writable raw disk
//   fake_crosvm.record=PATH    append "opened P" to PATH for every host path P the disk probing
//                              opens (a qcow2 backing file, a composite component by path)
//   fake_crosvm.burn=1         once ready, the guest works: the VMM spins on a CPU between its
//                              control requests (a guest that burns CPU)
//   fake_crosvm.eat_mib=MIB    once ready, the VMM allocates and touches MIB MiB of memory (a
//                              VMM that leaks: its cgroup's memory limit stops it)
//   fake_crosvm.hostile=PID    a VMM that was broken into: before the guest is ready it tries
//                              to read and write host files, to ptrace and to signal PID (its
//                              supervisor), to become root and to mount, and prints each
//                              outcome as "fake-crosvm hostile: WHAT: RESULT" on its console
//   fake_crosvm.hostile_port=P  ...and to connect to 127.0.0.1:P (a service on the host)
//
// Built as crosvm is by default (`cargo build`), without the composite-disk feature, when its
// file name contains "nocomposite": composite files are then raw disks, and `create_composite`
// is an unknown subcommand (35).
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "testing/fake_crosvm/crosvm_args.hpp"
#include "testing/fake_crosvm/input_checks.hpp"

using namespace crosvisor::fake_crosvm;
using Clock = std::chrono::steady_clock;

namespace {

struct Script {
  std::optional<int> fail;
  std::optional<int> exit_code;
  std::chrono::milliseconds after{0};
  std::chrono::milliseconds boot{0};
  bool ignore_powerbtn = false;
  bool powerbtn_unsupported = false;
  std::uint64_t chatter = 0;        // console bytes per second once ready
  std::uint64_t flood = 0;          // console bytes printed at once on each SIGUSR1
  std::optional<std::string> then;  // reboot, panic
  bool pvpanic = true;
  bool triple_fault_reboot = false;  // the guest's command line has reboot=t
  std::optional<std::string> write_qcow2;
  std::optional<pid_t> hostile;  // the supervisor it attacks
  std::optional<int> hostile_port;
  std::uint64_t eat_mib = 0;
  bool burn = false;
};

constexpr auto kChatterTick = std::chrono::milliseconds(10);

volatile std::sig_atomic_t flood_asked = 0;
extern "C" void ask_for_flood(int) {
  flood_asked = 1;
}

std::optional<std::string> marker(const std::string& params, const std::string& name) {
  const std::string key = "fake_crosvm." + name + "=";
  std::size_t at = 0;
  while ((at = params.find(key, at)) != std::string::npos) {
    if (at == 0 || params[at - 1] == ' ') {
      const auto start = at + key.size();
      return params.substr(start, params.find(' ', start) - start);
    }
    at += key.size();
  }
  return std::nullopt;
}

Script script_from(const std::string& params) {
  Script script;
  if (auto fail = marker(params, "fail"))
    script.fail = std::stoi(*fail);
  if (auto code = marker(params, "exit"))
    script.exit_code = std::stoi(*code);
  if (auto after = marker(params, "after_ms"))
    script.after = std::chrono::milliseconds(std::stoll(*after));
  if (auto boot = marker(params, "boot_ms"))
    script.boot = std::chrono::milliseconds(std::stoll(*boot));
  script.ignore_powerbtn = marker(params, "powerbtn") == "ignore";
  script.powerbtn_unsupported = marker(params, "powerbtn") == "unsupported";
  if (auto chatter = marker(params, "chatter"))
    script.chatter = std::stoull(*chatter);
  if (auto flood = marker(params, "flood"))
    script.flood = std::stoull(*flood);
  script.then = marker(params, "then");
  script.pvpanic = marker(params, "pvpanic") != "absent";
  script.write_qcow2 = marker(params, "write_qcow2");
  script.burn = marker(params, "burn") == "1";
  if (auto eat = marker(params, "eat_mib"))
    script.eat_mib = std::stoull(*eat);
  if (auto port = marker(params, "hostile_port"))
    script.hostile_port = std::stoi(*port);
  if (auto pid = marker(params, "hostile"))
    script.hostile = static_cast<pid_t>(std::stol(*pid));
  // The kernel's own reboot= option: t (triple) makes every reboot a triple fault.
  for (std::size_t at = params.find("reboot="); at != std::string::npos;
       at = params.find("reboot=", at + 1)) {
    if ((at == 0 || params[at - 1] == ' ') && at + 7 < params.size())
      script.triple_fault_reboot = params[at + 7] == 't';
  }
  if (script.then && !script.exit_code) {
    // What crosvm exits with when the guest does that.
    const bool reboots = *script.then == "reboot" || (*script.then == "panic" && !script.pvpanic);
    if (*script.then == "panic" && script.pvpanic)
      script.exit_code = 34;
    else if (reboots)
      script.exit_code = script.triple_fault_reboot ? 0 : 32;
  }
  return script;
}

class FakeVm {
 public:
  FakeVm(RunArgs args, CheckedInputs inputs) : args_(std::move(args)), inputs_(std::move(inputs)) {}

  void say(const std::string& line) {
    if (inputs_.console < 0)
      return;
    const std::string text = line + "\r\n";
    if (::write(inputs_.console, text.data(), text.size()) < 0) {
      // The reader is gone; a serial port does not care.
    }
  }

  // Memory the VMM keeps, every page touched (so that it is charged), a MiB at a time.
  void eat(std::uint64_t mib) {
    constexpr std::size_t kMib = 1 << 20;
    for (std::uint64_t i = 0; i < mib; ++i) {
      auto* chunk = static_cast<char*>(std::malloc(kMib));
      if (chunk == nullptr)
        return;
      std::memset(chunk, 1, kMib);
      eaten_.push_back(chunk);
    }
    say("fake-crosvm: ate " + std::to_string(mib) + " MiB");
  }

  // What a VMM taken over by its guest would try first. Each attempt's outcome is told.
  void attack(pid_t supervisor, std::optional<int> port) {
    const auto told = [&](const std::string& what, bool done) {
      say("fake-crosvm hostile: " + what + ": " + (done ? "DONE" : std::strerror(errno)));
    };
    const std::string target = std::to_string(supervisor);
    for (const std::string& path : std::vector<std::string>{
             "/etc/shadow", "/etc/passwd", "/root", "/home", "/proc/" + target + "/environ"}) {
      const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      told("read " + path, fd >= 0);
      if (fd >= 0)
        ::close(fd);
    }
    for (const char* path : {"/usr/crosvisor-hostile", "/etc/crosvisor-hostile"}) {
      const int fd = ::open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
      told(std::string("write ") + path, fd >= 0);
      if (fd >= 0)
        ::close(fd);
    }
    told("ptrace " + target, ::ptrace(PTRACE_ATTACH, supervisor, nullptr, nullptr) == 0);
    told("signal " + target, ::kill(supervisor, SIGTERM) == 0);
    told("setuid 0", ::setuid(0) == 0);
    told("mount", ::mount("none", "/tmp", "tmpfs", 0, nullptr) == 0);
    if (port) {
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in address{};
      address.sin_family = AF_INET;
      address.sin_port = htons(static_cast<std::uint16_t>(*port));
      address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      told("connect 127.0.0.1:" + std::to_string(*port),
           ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
      ::close(fd);
    }
  }

  // crosvm's exit: without --extended-status every VM exit that is not an error is 0.
  [[noreturn]] void exit_with(int code) {
    if (!args_.extended_status && code >= 32 && code <= 36 && code != kInvalidArgsExit)
      code = 0;
    std::fflush(nullptr);
    std::_Exit(code);
  }

  [[noreturn]] void run(const Script& script) {
    say("fake-crosvm: booting " + args_.name.value_or("crosvm") + " (" +
        std::to_string(args_.mem_mib) + " MiB, " + std::to_string(args_.cpus) + " vcpus" +
        (args_.cid ? ", cid " + std::to_string(*args_.cid) : "") + ")");
    say("fake-crosvm: command line: " + args_.params);
    for (const auto& description : inputs_.descriptions)
      say("fake-crosvm: " + description);
    if (script.hostile)
      attack(*script.hostile, script.hostile_port);
    std::this_thread::sleep_for(script.boot);
    if (script.flood != 0) {
      // Without SA_RESTART: the serve loop's poll returns, and floods.
      struct sigaction action {};
      action.sa_handler = ask_for_flood;
      sigemptyset(&action.sa_mask);
      ::sigaction(SIGUSR1, &action, nullptr);
    }
    say("fake-crosvm guest: ready");
    if (script.eat_mib != 0)
      eat(script.eat_mib);
    if (script.write_qcow2)
      write_qcow2_header(*script.write_qcow2);
    std::optional<Clock::time_point> exit_at;
    if (script.exit_code)
      exit_at = Clock::now() + script.after;
    script_ = script;
    serve(exit_at);
  }

 private:
  // A guest writing a qcow2 header into its own raw disk: version 3, backing file `path`.
  void write_qcow2_header(const std::string& path) {
    if (inputs_.first_writable_raw < 0) {
      say("fake-crosvm guest: no writable raw disk to write a qcow2 header to");
      return;
    }
    unsigned char header[104 + 256] = {};
    const auto put = [&](std::size_t at, std::uint64_t value, std::size_t size) {
      for (std::size_t i = 0; i < size; ++i)
        header[at + i] = static_cast<unsigned char>(value >> (8 * (size - 1 - i)));
    };
    std::memcpy(header, "QFI\xfb", 4);
    put(4, 3, 4);             // version
    put(8, 104, 8);           // backing file offset
    put(16, path.size(), 4);  // backing file size
    put(20, 16, 4);           // cluster bits
    put(24, 1 << 20, 8);      // size
    std::memcpy(header + 104, path.data(), std::min(path.size(), std::size_t{256}));
    if (::pwrite(inputs_.first_writable_raw, header, 104 + path.size(), 0) < 0)
      say(std::string("fake-crosvm guest: writing the qcow2 header failed: ") +
          std::strerror(errno));
    else
      say("fake-crosvm guest: wrote a qcow2 header naming " + path);
  }

  // One tick's share of the chatter: whole 100-byte lines, the remainder carried over.
  void chatter() {
    chatter_due_ += static_cast<double>(script_.chatter) * kChatterTick.count() / 1000.0;
    while (chatter_due_ >= 100) {
      char line[101];
      std::snprintf(line, sizeof(line), "fake-crosvm guest: chatter %012llu %s",
                    static_cast<unsigned long long>(chatter_lines_++),
                    std::string(100 - 2 - 40, 'c').c_str());
      say(line);
      chatter_due_ -= 100;
    }
  }

  // fake_crosvm.flood: the whole flood, timing each write.
  void flood() {
    constexpr std::size_t kWrite = 4096;
    std::string block;
    std::uint64_t written = 0, writes = 0;
    Clock::duration longest{};
    while (written < script_.flood) {
      block.clear();
      while (block.size() + 100 <= kWrite && written + block.size() < script_.flood) {
        char line[101];
        std::snprintf(line, sizeof(line), "fake-crosvm guest: flood %012llu %s\r\n",
                      static_cast<unsigned long long>(chatter_lines_++),
                      std::string(100 - 2 - 38, 'f').c_str());
        block += line;
      }
      const auto start = Clock::now();
      for (std::size_t done = 0; done < block.size();) {
        const ssize_t n = ::write(inputs_.console, block.data() + done, block.size() - done);
        if (n < 0 && errno == EINTR)
          continue;
        if (n < 0)
          return;  // the reader is gone
        done += static_cast<std::size_t>(n);
      }
      longest = std::max(longest, Clock::now() - start);
      written += block.size();
      ++writes;
    }
    say("fake-crosvm guest: flooded " + std::to_string(written) + " bytes, longest write " +
        std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(longest).count()) +
        " us, writes " + std::to_string(writes));
  }

  // What the guest read on its console: echoed, and each line answered.
  void read_console_input() {
    char buffer[4096];
    const ssize_t n = ::read(inputs_.console_input, buffer, sizeof(buffer));
    if (n <= 0) {
      inputs_.console_input = -1;  // nobody writes any more: a serial line with nothing on it
      return;
    }
    const std::string bytes(buffer, static_cast<std::size_t>(n));
    if (inputs_.console >= 0 && ::write(inputs_.console, bytes.data(), bytes.size()) < 0) {
      // The reader is gone; a serial port does not care.
    }
    for (char c : bytes) {
      if (c != '\r' && c != '\n') {
        typed_ += c;
      } else if (!typed_.empty()) {
        say("");
        say("fake-crosvm guest: read " + typed_);
        typed_.clear();
      }
    }
  }

  [[noreturn]] void serve(std::optional<Clock::time_point> exit_at) {
    // The control socket first; the console input, when there is one, second.
    std::vector<pollfd> fds{{inputs_.control, POLLIN, 0}, {inputs_.console_input, POLLIN, 0}};
    auto next_chatter = Clock::now();
    for (;;) {
      int timeout = -1;
      if (exit_at) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(*exit_at - Clock::now());
        if (left.count() <= 0) {
          say("fake-crosvm guest: exiting with " + std::to_string(*script_.exit_code));
          exit_with(*script_.exit_code);
        }
        timeout = static_cast<int>(left.count());
      }
      if (script_.chatter > 0) {
        if (Clock::now() >= next_chatter) {
          chatter();
          next_chatter += kChatterTick;
        }
        const auto wait =
            std::chrono::duration_cast<std::chrono::milliseconds>(next_chatter - Clock::now());
        const int chatter_timeout = static_cast<int>(std::max<std::int64_t>(0, wait.count()));
        timeout = timeout < 0 ? chatter_timeout : std::min(timeout, chatter_timeout);
      }
      if (script_.flood > 0) {
        // A SIGUSR1 between the look at the flag and poll would wait for the next event.
        timeout = timeout < 0 ? 100 : std::min(timeout, 100);
      }
      if (script_.burn) {
        // 50 ms of work between looks at the control socket.
        const auto until = Clock::now() + std::chrono::milliseconds(50);
        std::uint64_t spins = 0;
        while (Clock::now() < until)
          ++spins;
        burned_ += spins;
        timeout = 0;
      }
      if (::poll(fds.data(), fds.size(), timeout) < 0 && errno != EINTR) {
        std::perror("fake-crosvm: poll");
        exit_with(1);
      }
      if (flood_asked) {
        flood_asked = 0;
        flood();
      }
      if (fds[0].revents & POLLIN) {
        const int client = ::accept4(inputs_.control, nullptr, nullptr, SOCK_CLOEXEC);
        if (client >= 0)
          fds.push_back({client, POLLIN, 0});
      }
      if (fds[1].revents != 0) {
        read_console_input();
        fds[1].fd = inputs_.console_input;  // -1 once it ended: poll skips it
      }
      for (std::size_t i = 2; i < fds.size();) {
        if (fds[i].revents == 0) {
          ++i;
          continue;
        }
        if (!answer(fds[i].fd)) {
          ::close(fds[i].fd);
          fds.erase(fds.begin() + static_cast<std::ptrdiff_t>(i));
        } else {
          fds[i].revents = 0;
          ++i;
        }
      }
    }
  }

  // One request datagram on a control connection; false when the connection is done.
  bool answer(int client) {
    char buffer[4096];
    const ssize_t n = ::recv(client, buffer, sizeof(buffer), 0);
    if (n <= 0)
      return false;
    const std::string request(buffer, static_cast<std::size_t>(n));
    const auto reply = [&](const std::string& text) {
      ::send(client, text.data(), text.size(), MSG_NOSIGNAL);
    };
    if (request == "\"Exit\"") {
      reply("\"Ok\"");
      say("fake-crosvm: stopping on request (the guest is not told)");
      exit_with(0);
    }
    if (request == "\"Powerbtn\"") {
      if (script_.powerbtn_unsupported) {
        reply("{\"Err\":95}");  // ENOTSUP: no ACPI PM device
        return true;
      }
      reply("\"Ok\"");
      if (script_.ignore_powerbtn) {
        say("fake-crosvm guest: ignoring the power button");
        return true;
      }
      say("fake-crosvm guest: power button pressed, powering off");
      exit_with(0);
    }
    reply("{\"Err\":\"fake-crosvm: unsupported request " + request.substr(0, 100) + "\"}");
    return true;
  }

  RunArgs args_;
  CheckedInputs inputs_;
  Script script_;
  std::string typed_;  // a console input line not finished yet
  double chatter_due_ = 0;
  std::uint64_t chatter_lines_ = 0;
  std::vector<char*> eaten_;  // kept for the VMM's life
  std::uint64_t burned_ = 0;  // work done, so that the spinning is not optimised away
};

}  // namespace

int main(int argc, char** argv) {
  // Before this process opens anything: what did the supervisor hand over?
  const std::set<int> inherited = inherited_fds();
  const std::vector<std::string> command(argv + 1, argv + argc);
  Build build;
  build.composite_disk = std::string(argv[0]).find("nocomposite") == std::string::npos;
  // `crosvm create_composite --help`: how a supervisor tells whether the feature is there.
  if (!command.empty() && command.front() == "create_composite") {
    if (!build.composite_disk) {
      std::fprintf(stderr, "Unrecognized argument: create_composite\n");
      return kInvalidArgsExit;
    }
    std::printf("Usage: crosvm create_composite <path> [<partitions...>]\n");
    return 0;
  }
  auto args = parse_crosvm_args(command);
  if (!args) {
    std::fprintf(stderr, "%s\n", args.error().message.c_str());
    return args.error().kind == crosvisor::ErrorKind::invalid_config ? kInvalidArgsExit : 1;
  }
  if (auto record = marker(args->params, "record"))
    build.record = *record;
  auto inputs = check_inputs(*args, inherited, build);
  if (!inputs) {
    std::fprintf(stderr, "fake-crosvm: %s\n", inputs.error().message.c_str());
    return 1;
  }
  Script script;
  try {
    script = script_from(args->params);
  } catch (const std::exception&) {
    std::fprintf(stderr, "fake-crosvm: a fake_crosvm.* marker in --params is not a number\n");
    return 1;
  }
  FakeVm vm(std::move(*args), std::move(*inputs));
  if (script.fail) {
    std::fprintf(stderr, "fake-crosvm: failing to start, as the params asked\n");
    vm.exit_with(*script.fail);
  }
  vm.run(script);
}
