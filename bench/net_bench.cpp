// Networks: TCP throughput between two real guests (QEMU TCG) joined the way crosvisord joins
// them (a bridge in a namespace of the network's own, one TAP each), against the same two guests
// whose TAPs are joined directly (tc mirred redirects each TAP's frames to the other: no bridge);
// and the time to bring a network up through the service (namespace, bridge, dnsmasq).
// Rounds alternate the two links, so that a busy machine slows both alike. The guests run with
// crosvisor's own QEMU command line (vmm::prepare_vmm_launch), through the reactor.
#include <unistd.h>

#include <algorithm>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <vector>

#include "actors/network_actor.hpp"
#include "bench/bench.hpp"
#include "bench/stand_in.hpp"
#include "crosvisor/messages.hpp"
#include "crosvisor/service.hpp"
#include "net/dnsmasq.hpp"
#include "net/links.hpp"
#include "net/network_host.hpp"
#include "vmm/reactor.hpp"
#include "vmm/vmm_backend.hpp"
#include "vmm/vmm_launch.hpp"

namespace crosvisor::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kMib = 48;  // transferred per round

// What a guest's console said, for the bench thread to wait on.
struct Console {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::string> lines;
  bool exited = false;

  std::string wait_for(const std::string& prefix, std::chrono::seconds limit) {
    std::unique_lock lock(mutex);
    std::string found;
    const bool seen = changed.wait_for(lock, limit, [&] {
      for (const auto& line : lines) {
        if (line.rfind(prefix, 0) == 0) {
          found = line;
          return true;
        }
      }
      return exited;
    });
    if (!seen || found.empty())
      throw std::runtime_error("net: no '" + prefix + "' from the guest");
    return found;
  }
};

vmm::Reactor::ChildId start_guest(vmm::Reactor& reactor, const Options& options,
                                  const std::filesystem::path& run_dir, const std::string& name,
                                  const std::string& args, std::shared_ptr<const UniqueFd> tap,
                                  MacAddress mac, Console& console) {
  VmSpec spec;
  spec.name = name;
  spec.kernel = options.guest_dir / "vmlinuz";
  spec.initrd = options.guest_dir / "initramfs.cpio.gz";
  spec.params = "console=ttyS0 quiet reboot=t panic=-1 " + args;
  spec.accel = "tcg";
  spec.debug = DebugLevel::full;
  spec.memory_mib = 256;
  std::filesystem::create_directories(run_dir / name);
  vmm::LaunchContext context{run_dir / name, 0, {}, 0, {}};
  context.nics.push_back({std::move(tap), mac});
  vmm::ChildObserver observer;
  observer.spawned = [](pid_t) {};
  observer.started = [] {};
  observer.launch_failed = [&console](Error error) {
    std::lock_guard lock(console.mutex);
    console.lines.push_back("launch failed: " + error.message);
    console.exited = true;
    console.changed.notify_all();
  };
  observer.console_text = [&console](std::string lines) {
    std::lock_guard lock(console.mutex);
    for_each_line(lines, [&](std::string_view line) { console.lines.emplace_back(line); });
    console.changed.notify_all();
  };
  observer.console_bytes = [](std::string) {};
  observer.vmm_output_line = [](std::string) {};
  observer.guest_notice = [](lifecycle::GuestNotice) {};
  observer.exited = [&console](process::ExitStatus) {
    std::lock_guard lock(console.mutex);
    console.exited = true;
    console.changed.notify_all();
  };
  return reactor.launch([spec, context] { return vmm::prepare_vmm_launch(spec, context); },
                        std::move(observer));
}

// Two TAPs in a namespace of their own, joined by a bridge (crosvisord's way) or directly.
struct Link {
  std::optional<net::NetworkHost> host;
  std::shared_ptr<const UniqueFd> taps[2];
};

Link make_link(bool bridge, const std::filesystem::path& dir) {
  Link link;
  auto host = net::NetworkHost::create(*parse_subnet("10.250.0.0/24"), dir);
  if (!host)
    throw std::runtime_error("net: " + host.error().message);
  link.host.emplace(std::move(*host));
  std::string names[2];
  for (int i = 0; i < 2; ++i) {
    auto tap = link.host->add_tap();
    if (!tap)
      throw std::runtime_error("net: " + tap.error().message);
    link.taps[i] = std::make_shared<const UniqueFd>(std::move(tap->fd));
    names[i] = tap->name;
  }
  if (!bridge) {
    // Off the bridge, each TAP's ingress redirected to the other's egress.
    const std::string space = "nsenter --net=/proc/" + std::to_string(::getpid()) + "/fd/" +
                              std::to_string(link.host->space().fd()) + " ";
    for (int i = 0; i < 2; ++i) {
      const std::string from = names[i], to = names[1 - i];
      const std::string commands =
          space + "ip link set " + from + " nomaster && " + space + "tc qdisc add dev " + from +
          " ingress && " + space + "tc filter add dev " + from +
          " parent ffff: protocol all u32 match u32 0 0 action mirred egress redirect dev " + to;
      if (std::system(commands.c_str()) != 0)
        throw std::runtime_error("net: tc mirred failed (" + commands + ")");
    }
  }
  return link;
}

// Bytes per second from server to client over `link`.
double transfer(const Options& options, bool bridge, int round) {
  const auto dir = options.work_dir / ("net-" + std::to_string(round) + (bridge ? "b" : "p"));
  Link link = make_link(bridge, dir / "network");
  Console server, client;
  {
    vmm::Reactor reactor;
    start_guest(reactor, options, dir, "server",
                "cv.ip=10.250.0.2/24 cv.serve=80 cv.serve_mib=" + std::to_string(kMib),
                link.taps[0], derived_mac("bench", "server", 0), server);
    server.wait_for("crosvisor-guest: ready", std::chrono::seconds(300));
    start_guest(reactor, options, dir, "client", "cv.ip=10.250.0.3/24 cv.pull=10.250.0.2:80/big",
                link.taps[1], derived_mac("bench", "client", 0), client);
    const auto line = client.wait_for("crosvisor-guest: pulled ", std::chrono::seconds(600));
    unsigned long long bytes = 0;
    double seconds = 0;
    if (std::sscanf(line.c_str(), "crosvisor-guest: pulled %llu bytes in %lf s", &bytes,
                    &seconds) != 2 ||
        bytes < (kMib << 20) || seconds <= 0)
      throw std::runtime_error("net: the transfer failed: " + line);
    std::filesystem::remove_all(dir);
    return static_cast<double>(bytes) / seconds;  // ~Reactor kills both guests
  }
}

// Seconds from asking the service for a network to its being up (namespace, bridge, dnsmasq
// running), then from dropping it to its dnsmasq being gone.
double network_up_once(caf::actor_system& system, const ServiceActor& service, int round) {
  caf::scoped_actor self{system};
  NetworkSpec spec{"bench-" + std::to_string(round), std::nullopt, true};
  const auto start = Clock::now();
  double seconds = 0;
  self->request(caf::actor_cast<NetworkRegistry>(service), caf::infinite, network_up_atom::value,
                spec, std::optional<std::uint32_t>(), std::optional<DurableNetwork>())
      .receive(
          [&](const NetworkActor&) {
            seconds = std::chrono::duration<double>(Clock::now() - start).count();
          },
          [&](caf::error& error) { throw std::runtime_error(system.render(error)); });
  return seconds;
}

}  // namespace

int net_scenario(const Options& options) {
  if (!std::filesystem::exists(options.guest_dir / "vmlinuz")) {
    std::fprintf(stderr, "net: no test guest in %s (guest/build)\n", options.guest_dir.c_str());
    return 1;
  }
  if (::geteuid() != 0) {
    std::fprintf(stderr, "net: networks need root\n");
    return 1;
  }
  QuietLogs quiet;
  std::filesystem::create_directories(options.work_dir);
  const int rounds = options.quick ? 1 : 3;
  std::vector<double> bridged, paired;
  for (int round = 0; round < rounds; ++round) {
    paired.push_back(transfer(options, false, round));
    bridged.push_back(transfer(options, true, round));
  }

  std::vector<double> up;
  {
    caf::actor_system_config config;
    caf::actor_system system{config};
    auto service = spawn_service(system, make_service_options(options.work_dir / "up"));
    for (int round = 0; round < (options.quick ? 3 : 20); ++round)
      up.push_back(network_up_once(system, service, round));
    caf::anon_send_exit(service, caf::exit_reason::user_shutdown);
  }
  std::printf("TCP between two guests under TCG (%d MiB over HTTP, busybox nc), median of %d:\n",
              kMib, rounds);
  std::printf("  TAPs joined directly (tc mirred, baseline)  %7.1f MB/s\n", median(paired) / 1e6);
  std::printf("  TAPs on the network's bridge (crosvisord)   %7.1f MB/s   ratio %.2f\n",
              median(bridged) / 1e6, median(bridged) / median(paired));
  std::printf("network up (namespace, bridge, dnsmasq started), median of %zu: %.1f ms\n",
              up.size(), median(up) * 1e3);
  return 0;
}

}  // namespace crosvisor::bench
