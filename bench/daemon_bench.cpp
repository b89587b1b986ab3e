// crosvisord under hostile clients, measured from outside as a client sees it.
//
//   control:    the latency of one client's pings while two others pipeline requests as fast
//               as they can, against the same client's pings with nobody else there (same run).
//   lifecycles: the daemon's resident memory over many VM lifecycles that fail at start (the
//               crosvm stand-in told to fail), per thousand lifecycles after a warm-up.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>
#include <vector>

#include "bench/bench.hpp"
#include "bench/frame_client.hpp"
#include "process/fd_passing.hpp"
#include "process/launch.hpp"
#include "protocol/framing.hpp"

namespace crosvisor::bench {
namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

// A crosvisord of the benchmark's own.
struct Daemon {
  std::filesystem::path socket;
  process::SpawnedChild child;
  Daemon(const Options& options, const std::string& tag) {
    const auto dir = options.work_dir / tag;
    std::filesystem::create_directories(dir);
    socket = dir / "control.sock";
    process::LaunchRequest request;
    request.binary = std::filesystem::read_symlink("/proc/self/exe").parent_path() / "crosvisord";
    request.args = {"--socket",    socket.string(), "--crosvm", options.fake_crosvm.string(),
                    "--log-level", "error"};
    request.max_open_files = 65536;
    request.fds.set(0, UniqueFd(::open("/dev/null", O_RDWR | O_CLOEXEC)));
    request.fds.set(1, UniqueFd(::open("/dev/null", O_RDWR | O_CLOEXEC)));
    request.fds.set(2, UniqueFd(::open("/dev/null", O_RDWR | O_CLOEXEC)));
    auto spawned = process::spawn_child(request);
    if (!spawned)
      throw std::runtime_error(spawned.error().message);
    child = std::move(*spawned);
    for (int i = 0; i < 500 && !std::filesystem::exists(socket); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ~Daemon() {
    ::kill(child.pid, SIGTERM);
    ::waitpid(child.pid, nullptr, 0);
  }
  std::size_t rss_kib() const {
    std::ifstream status("/proc/" + std::to_string(child.pid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("VmRSS:", 0) == 0)
        return std::stoul(line.substr(6));
    }
    return 0;
  }
};

struct Latencies {
  double p50_ms, p99_ms, max_ms;
};

Latencies ping_latencies(FrameClient& client, int count) {
  std::vector<double> ms;
  for (int i = 0; i < count; ++i) {
    const auto start = Clock::now();
    client.send({{"id", i}, {"op", "ping"}});
    client.receive();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], ms[ms.size() * 99 / 100], ms.back()};
}

}  // namespace

int control_scenario(const Options& options) {
  Daemon daemon(options, "control");
  const int pings = options.quick ? 300 : 3000;
  FrameClient probe(daemon.socket);
  ping_latencies(probe, 100);  // warm-up
  const auto idle = ping_latencies(probe, pings);
  std::atomic<bool> flooding{true};
  std::atomic<std::uint64_t> flood_replies{0};
  std::vector<std::thread> floods;
  for (int f = 0; f < 2; ++f) {
    floods.emplace_back([&] {
      FrameClient greedy(daemon.socket);
      const std::string ping = protocol::encode_frame(R"({"id":1,"op":"ping"})");
      std::string burst;
      for (int i = 0; i < 500; ++i)
        burst += ping;
      ::fcntl(greedy.fd(), F_SETFL, O_NONBLOCK);
      char sink[65536];
      while (flooding) {
        [[maybe_unused]] auto sent = ::send(greedy.fd(), burst.data(), burst.size(), MSG_NOSIGNAL);
        ssize_t n;
        while ((n = ::recv(greedy.fd(), sink, sizeof(sink), 0)) > 0)
          flood_replies += static_cast<std::uint64_t>(n) / 26;  // about one pong each
        pollfd wait{greedy.fd(), POLLIN | POLLOUT, 0};
        ::poll(&wait, 1, 10);
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto flood_start = Clock::now();
  const auto loaded = ping_latencies(probe, pings);
  const double flood_s = std::chrono::duration<double>(Clock::now() - flood_start).count();
  flooding = false;
  for (auto& thread : floods)
    thread.join();
  std::printf("control: another client's ping round trips, %d of them\n", pings);
  std::printf("| | p50 | p99 | max |\n|---|---|---|---|\n");
  std::printf("| alone (baseline) | %.3f ms | %.3f ms | %.3f ms |\n", idle.p50_ms, idle.p99_ms,
              idle.max_ms);
  std::printf("| beside 2 clients pipelining pings | %.3f ms | %.3f ms | %.3f ms |\n",
              loaded.p50_ms, loaded.p99_ms, loaded.max_ms);
  std::printf("| ratio | %.2f | %.2f | %.2f |\n", loaded.p50_ms / idle.p50_ms,
              loaded.p99_ms / idle.p99_ms, loaded.max_ms / idle.max_ms);
  std::printf("control: the flooding clients got about %.0f replies/s meanwhile\n",
              static_cast<double>(flood_replies.load()) / flood_s);
  return 0;
}

int lifecycles_scenario(const Options& options) {
  Daemon daemon(options, "lifecycles");
  const auto kernel = options.work_dir / "lifecycles" / "kernel";
  { std::ofstream(kernel) << "not a kernel"; }
  FrameClient client(daemon.socket);
  const json vm = {{"name", "failing"},
                   {"vmm", "crosvm"},
                   {"kernel", {{"fd", 0}}},
                   {"params", "console=ttyS0 fake_crosvm.fail=1"},
                   {"debug", "full"}};
  int done = 0;
  const auto run = [&](int n) {
    for (int i = 0; i < n; ++i, ++done) {
      const int fd = ::open(kernel.c_str(), O_RDONLY | O_CLOEXEC);
      client.send({{"id", done}, {"op", "create"}, {"vm", vm}}, {fd});
      ::close(fd);
      while (client.receive().value("state", "") != "dead") {
      }
    }
  };
  const int total = options.quick ? 2000 : 20000;
  const auto start_kib = daemon.rss_kib();
  run(1000);
  const auto warm_kib = daemon.rss_kib();
  const auto start = Clock::now();
  run(total - 1000);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const auto end_kib = daemon.rss_kib();
  std::printf("lifecycles: %d VMs that fail at start, one after another through one session\n",
              total);
  std::printf(
      "| RSS at start | after 1000 | after %d | growth per 1000 after warm-up |\n"
      "|---|---|---|---|\n| %zu KiB | %zu KiB | %zu KiB | %.1f KiB |\n",
      total, start_kib, warm_kib, end_kib,
      static_cast<double>(end_kib - std::min(end_kib, warm_kib)) * 1000.0 / (total - 1000));
  std::printf("lifecycles: %.0f lifecycles/s\n", (total - 1000) / seconds);
  return 0;
}

}  // namespace crosvisor::bench
