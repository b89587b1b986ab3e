// A thousand VMs on the crosvm stand-in (testing/fake_crosvm): each is started, waited for until
// its "guest" is ready, stopped through its control socket (power button) and reaped.
//
// Baseline, in the same run: the same stand-in processes with the same argv and fds, driven by
// the least a supervisor can do — posix_spawn, a blocking read of each console until "ready",
// one control datagram each, waitpid. crosvisor does the same through its actors and its reactor.
// Reported: wall time of each (median of the rounds), their ratio, VM starts per second, and the
// supervisor's resident memory per live VM.
#include <fcntl.h>
#include <malloc.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "bench/bench.hpp"
#include "bench/stand_in.hpp"
#include "crosvisor/messages.hpp"
#include "crosvisor/service.hpp"
#include "process/launch.hpp"
#include "vmm/reactor.hpp"
#include "vmm/vmm_backend.hpp"

namespace crosvisor::bench {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

long resident_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0)
      return std::stol(line.substr(6));
  }
  return 0;
}

struct Round {
  double total = 0;                // start of the first launch to the last reap
  double to_ready = 0;             // start of the first launch to the last VM ready
  double heap_kib_per_vm = 0;      // heap in use per live VM
  double resident_kib_per_vm = 0;  // growth of the resident set per live VM
};

void check(bool ok, const std::string& what) {
  if (!ok)
    throw std::runtime_error(what + ": " + std::strerror(errno));
}

// --- baseline: posix_spawn + waitpid ------------------------------------------------------------

struct DirectChild {
  pid_t pid = -1;
  UniqueFd console;
  UniqueFd output;
  std::filesystem::path control;
};

DirectChild spawn_direct(vmm::VmmLaunch launch) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  // Sources first moved above every target, as any exact-fd launcher must.
  std::vector<UniqueFd> moved;
  for (const auto& entry : launch.request.fds.entries()) {
    moved.emplace_back(fcntl(entry.source.get(), F_DUPFD_CLOEXEC, 1024));
    check(moved.back().valid(), "dup");
    posix_spawn_file_actions_adddup2(&actions, moved.back().get(), entry.target);
  }
  // Whatever this process inherited without close-on-exec stays out of the child.
  posix_spawn_file_actions_addclosefrom_np(&actions, launch.request.fds.highest_target() + 1);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attributes, 0);
  std::vector<std::string> argv_text{launch.request.binary.string()};
  argv_text.insert(argv_text.end(), launch.request.args.begin(), launch.request.args.end());
  std::vector<char*> argv;
  for (auto& arg : argv_text)
    argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& entry : launch.request.environment)
    envp.push_back(entry.data());
  envp.push_back(nullptr);
  DirectChild child;
  const int error =
      posix_spawn(&child.pid, argv[0], &actions, &attributes, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (error != 0)
    throw std::runtime_error(std::string("posix_spawn: ") + std::strerror(error));
  child.console = std::move(launch.console);
  child.output = std::move(launch.vmm_output);
  child.control = launch.control.socket;
  return child;  // `launch` and `moved` close the child's ends here
}

void await_ready(const DirectChild& child) {
  std::string seen;
  char buffer[4096];
  while (seen.find(kReady) == std::string::npos) {
    const ssize_t n = ::read(child.console.get(), buffer, sizeof(buffer));
    if (n <= 0) {
      std::string why(512, '\0');
      why.resize(static_cast<std::size_t>(
          std::max<ssize_t>(0, ::read(child.output.get(), why.data(), why.size()))));
      throw std::runtime_error("baseline: a stand-in ended before it was ready: " + why);
    }
    seen.append(buffer, static_cast<std::size_t>(n));
  }
}

void press_power_button(const DirectChild& child) {
  UniqueFd socket(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, child.control.c_str(), sizeof(address.sun_path) - 1);
  check(::connect(socket.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0,
        "connect");
  const std::string request = "\"Powerbtn\"";
  check(::send(socket.get(), request.data(), request.size(), MSG_NOSIGNAL) > 0, "send");
  char reply[64];
  check(::recv(socket.get(), reply, sizeof(reply), 0) > 0, "recv");
}

Round baseline_round(const Options& options, int round) {
  const auto dir = options.work_dir / ("direct-" + std::to_string(round));
  std::vector<DirectChild> children;
  children.reserve(static_cast<std::size_t>(options.vms));
  const auto start = Clock::now();
  for (int i = 0; i < options.vms; ++i) {
    auto launch = vmm::prepare_vmm_launch(
        stand_in_spec("bench-", i, options),
        vmm::LaunchContext{
            dir / ("vm-" + std::to_string(i)), 100'000u + static_cast<unsigned>(i), {}});
    if (!launch)
      throw std::runtime_error(launch.error().message);
    launch->request.binary = *process::resolve_binary(launch->request.binary);
    children.push_back(spawn_direct(std::move(*launch)));
  }
  for (const auto& child : children)
    await_ready(child);
  Round result;
  result.to_ready = seconds_since(start);
  for (const auto& child : children)
    press_power_button(child);
  for (const auto& child : children) {
    int status = 0;
    check(waitpid(child.pid, &status, 0) == child.pid, "waitpid");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      throw std::runtime_error("baseline: a stand-in did not power off cleanly");
  }
  result.total = seconds_since(start);
  std::filesystem::remove_all(dir);
  return result;
}

// --- crosvisor: service, vm actors, reactor ------------------------------------------------------

// `spawner`: VMMs started through the spawner (process/spawner.hpp), as crosvisord does; else by
// the supervisor itself, which then pays for its own fds at every start.
Round supervisor_round(const Options& options, int round, bool spawner) {
  caf::actor_system_config config;
  caf::actor_system system{config};
  auto service = spawn_service(
      system, stand_in_service_options(options, "sup-" + std::to_string(round), spawner));
  caf::scoped_actor client{system};
  const long rss_before = resident_kib();
  const double heap_before = heap_in_use_kib();

  std::vector<VmHandle> vms;
  const auto start = Clock::now();
  for (int i = 0; i < options.vms; ++i) {
    client
        ->request(service, caf::infinite, create_atom::value, stand_in_spec("bench-", i, options),
                  caf::actor_cast<caf::actor>(client))
        .receive([&](VmHandle vm) { vms.push_back(vm); },
                 [&](caf::error& error) { throw std::runtime_error(system.render(error)); });
  }
  const auto await = [&](VmState state) {
    int reached = 0;
    while (reached < options.vms) {
      client->receive(
          [&](const VmEvent& event) {
            if (event.state == state)
              ++reached;
            else if (event.state == VmState::dead)
              throw std::runtime_error(event.vm + " died early: " + event.detail);
          },
          caf::after(std::chrono::seconds(60)) >>
              [&] { throw std::runtime_error("crosvisor: no event for 60 s"); });
    }
  };
  await(VmState::ready);
  Round result;
  result.to_ready = seconds_since(start);
  result.heap_kib_per_vm = (heap_in_use_kib() - heap_before) / options.vms;
  result.resident_kib_per_vm = static_cast<double>(resident_kib() - rss_before) / options.vms;
  for (const auto& vm : vms)
    client->send(vm, stop_atom::value);
  await(VmState::dead);
  result.total = seconds_since(start);
  client->send_exit(service, caf::exit_reason::user_shutdown);
  return result;
}

}  // namespace

int scale_scenario(const Options& options_in) {
  const Options options = prepare_stand_in(options_in);
  const QuietLogs quiet;

  const int rounds = options.quick ? 1 : 3;
  std::vector<double> direct_total, direct_ready, crosvisor_total, crosvisor_ready, heap, resident;
  std::vector<double> in_process_total, in_process_ready;
  for (int round = 0; round < rounds; ++round) {
    // Alternate, so that none always runs on a warmer machine.
    const Round direct = baseline_round(options, round);
    const Round supervised = supervisor_round(options, round, true);
    const Round in_process = supervisor_round(options, round, false);
    direct_total.push_back(direct.total);
    direct_ready.push_back(direct.to_ready);
    crosvisor_total.push_back(supervised.total);
    crosvisor_ready.push_back(supervised.to_ready);
    in_process_total.push_back(in_process.total);
    in_process_ready.push_back(in_process.to_ready);
    heap.push_back(supervised.heap_kib_per_vm);
    resident.push_back(supervised.resident_kib_per_vm);
    std::printf(
        "scale: round %d: baseline %.2f s, crosvisor %.2f s (VMMs started in-process: %.2f s)\n",
        round + 1, direct.total, supervised.total, in_process.total);
  }

  const double base = median(direct_total);
  const double ratio = median(crosvisor_total) / base;
  std::printf(
      "scale: %d VMs on the crosvm stand-in, start + ready + power-button stop + reap, "
      "median of %d\n",
      options.vms, rounds);
  std::printf("| | wall | to all ready | VM starts/s | ratio |\n|---|---|---|---|---|\n");
  const auto row = [&](const char* what, const std::vector<double>& total,
                       const std::vector<double>& ready) {
    std::printf("| %s | %.2f s | %.2f s | %.0f | %.2f |\n", what, median(total), median(ready),
                options.vms / median(ready), median(total) / base);
  };
  row("posix_spawn + waitpid (baseline)", direct_total, direct_ready);
  row("crosvisor (service, vm actors, reactor, spawner)", crosvisor_total, crosvisor_ready);
  row("crosvisor, VMMs started in-process", in_process_total, in_process_ready);
  std::printf(
      "scale: supervisor memory per live VM: %.1f KiB heap in use, %.1f KiB resident "
      "growth (medians)\n",
      median(heap), median(resident));
  const double per_vm = std::max(median(heap), median(resident));
  std::printf("scale: targets ratio <= 1.10: %s, memory <= 16 KiB per VM: %s\n",
              ratio <= 1.10 ? "met" : "MISSED", per_vm <= 16 ? "met" : "MISSED");
  return 0;
}

}  // namespace crosvisor::bench
