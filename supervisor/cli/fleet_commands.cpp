#include "supervisor/cli/fleet_commands.hpp"

#include <poll.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <thread>

#include "config/fleet_config.hpp"
#include "protocol/fleet_json.hpp"
#include "supervisor/cli/daemon_client.hpp"
#include "supervisor/exit_codes.hpp"
#include "supervisor/signals.hpp"

namespace crosvisor::cli {
namespace {

using json = nlohmann::json;

void print_table(const json& fleet) {
  std::printf("fleet %s: %d of %d ready, %d failed\n", fleet.value("name", "?").c_str(),
              fleet.value("ready", 0), fleet.value("total", 0), fleet.value("failed", 0));
  std::printf("  %-24s %-9s %-6s %-8s %-9s %s\n", "NAME", "STATE", "CID", "PID", "RESTARTS",
              "LAST DEATH");
  for (const auto& vm : fleet["vms"]) {
    std::printf("  %-24s %-9s %-6u %-8d %-9u %s%s\n", vm.value("name", "?").c_str(),
                vm.value("state", "?").c_str(), vm.value("cid", 0u), vm.value("pid", -1),
                vm.value("restarts", 0u), vm.value("last_death", "-").c_str(),
                vm.value("failed", false) ? " (failed)" : "");
  }
  std::fflush(stdout);
}

Expected<json> status_of(DaemonClient& client, const std::string& name) {
  auto reply = client.call({{"op", "fleet_status"}, {"fleet", name}});
  if (!reply)
    return std::unexpected(reply.error());
  if ((*reply)["fleets"].empty())
    return make_error(ErrorKind::not_found, "no fleet named " + name);
  return (*reply)["fleets"][0];
}

// The fleet a command means: `name`, else the one of the client's fleets that has `vm` (or the
// only one when no VM is named).
Expected<std::string> pick_fleet(DaemonClient& client, const std::string& name,
                                 const std::string& vm) {
  if (!name.empty())
    return name;
  auto reply = client.call({{"op", "fleet_status"}});
  if (!reply)
    return std::unexpected(reply.error());
  std::vector<std::string> candidates;
  for (const auto& fleet : (*reply)["fleets"]) {
    bool has = vm.empty();
    for (const auto& member : fleet["vms"])
      has = has || member.value("name", "") == vm;
    if (has)
      candidates.push_back(fleet.value("name", ""));
  }
  if (candidates.size() == 1)
    return candidates.front();
  if (candidates.empty())
    return make_error(ErrorKind::not_found,
                      vm.empty() ? "you have no fleet" : "no fleet of yours has a VM " + vm);
  return make_error(ErrorKind::invalid_config, "several fleets match: name one");
}

}  // namespace

int fleet_check(const std::filesystem::path& file) {
  auto fleet = config::load_fleet_file(file);
  if (!fleet) {
    std::cerr << fleet.error().message << '\n';
    return kExitConfig;
  }
  std::cout << file.string() << ": fleet " << fleet->name << ", " << fleet->vms.size() << " VM(s), "
            << fleet->concurrency << " starting at once: OK\n";
  return 0;
}

int fleet_up(const DaemonOptions& options, const FleetUpOptions& up) {
  remove_abandoned_runtime_dirs();
  auto fleet = config::load_fleet_file(up.file);
  if (!fleet) {
    std::cerr << fleet.error().message << '\n';
    return kExitConfig;
  }
  for (const auto& vm : fleet->vms) {
    if (!vm.spec.vmm_binary.empty()) {
      std::cerr << "vm fleet: " << vm.spec.name
                << " names a VMM binary; crosvisord runs the binaries it was started with "
                   "(--qemu, --crosvm)\n";
      return kExitConfig;
    }
  }
  // The files are opened here, with this user's rights; the daemon gets the fds.
  auto message = protocol::fleet_to_message(*fleet);
  if (!message) {
    std::cerr << "vm fleet: " << message.error().message << '\n';
    return kExitConfig;
  }
  const bool attached = up.foreground || up.until_ready;
  const sigset_t stop_signals = block_stop_signals();
  auto client = DaemonClient::connect(choose_socket(options.socket));
  std::optional<PrivateSupervisor> supervisor;
  if (!client && client.error().kind == ErrorKind::not_found && attached) {
    auto started = start_private_supervisor({}, up.log_level);
    if (!started) {
      std::cerr << "vm fleet: " << started.error().message << '\n';
      return kExitSupervisor;
    }
    supervisor = std::move(*started);
    client = DaemonClient::connect(supervisor->socket);
  }
  if (!client) {
    std::cerr << "vm fleet: " << client.error().message
              << (attached ? "" : " (start crosvisord, or use --foreground)") << '\n';
    return kExitSupervisor;
  }
  auto reply = client->call(
      {{"op", "fleet_up"}, {"fleet", message->fleet}, {"foreground", attached}}, {}, message->fds);
  message->fds.clear();
  if (!reply) {
    std::cerr << "vm fleet: " << reply.error().message << '\n';
    return kExitConfig;
  }

  // Progress until every VM is up or failed.
  const bool terminal = ::isatty(STDERR_FILENO) == 1;
  UniqueFd signals(signalfd(-1, &stop_signals, SFD_CLOEXEC));
  std::string last_line;
  json status;
  bool interrupted = false;
  for (;;) {
    auto current = status_of(*client, fleet->name);
    if (!current) {
      std::cerr << "vm fleet: " << current.error().message << '\n';
      return kExitSupervisor;
    }
    status = *current;
    int starting = 0;
    int waiting = 0;
    for (const auto& vm : status["vms"]) {
      const std::string state = vm.value("state", "");
      starting += state == "starting" || state == "running";
      waiting += state == "created";
    }
    char line[160];
    std::snprintf(line, sizeof(line), "fleet %s: %d/%d ready, %d starting, %d waiting, %d failed",
                  fleet->name.c_str(), status.value("ready", 0), status.value("total", 0), starting,
                  waiting, status.value("failed", 0));
    if (line != last_line) {
      if (terminal)
        std::fprintf(stderr, "\r%-78s", line);
      else
        std::fprintf(stderr, "%s\n", line);
      last_line = line;
    }
    if (status.value("ready", 0) + status.value("failed", 0) >= status.value("total", 0))
      break;
    pollfd wait{signals.get(), POLLIN, 0};
    if (::poll(&wait, 1, 250) > 0) {
      interrupted = true;
      break;
    }
  }
  if (terminal)
    std::fprintf(stderr, "\n");
  print_table(status);
  int exit_code = status.value("failed", 0) == 0 ? 0 : 1;
  if (up.foreground && !up.until_ready && !interrupted) {
    std::fprintf(stderr, "fleet %s: up; Ctrl-C takes it down\n", fleet->name.c_str());
    pollfd wait{signals.get(), POLLIN, 0};
    while (::poll(&wait, 1, -1) < 0 && errno == EINTR) {
    }
  }
  if (attached) {
    std::fprintf(stderr, "fleet %s: going down\n", fleet->name.c_str());
    auto downed = client->call({{"op", "fleet_down"}, {"fleet", fleet->name}});
    if (!downed) {
      std::cerr << "vm fleet: " << downed.error().message << '\n';
      return kExitSupervisor;
    }
    print_table((*downed)["fleet"]);
  }
  if (supervisor) {
    // Our session ends with the connection; the private supervisor then exits by itself.
    client = make_error(ErrorKind::io, "closed");
    finish_private_supervisor(*supervisor);
  }
  return interrupted ? 128 + SIGINT : exit_code;
}

int fleet_status(const DaemonOptions& options, const std::string& name, bool all) {
  auto client = DaemonClient::connect(choose_socket(options.socket));
  if (!client) {
    std::cerr << "vm: " << client.error().message << '\n';
    return kExitSupervisor;
  }
  json request = {{"op", "fleet_status"}, {"all", all}};
  if (!name.empty())
    request["fleet"] = name;
  auto reply = client->call(request);
  if (!reply) {
    std::cerr << "vm: " << reply.error().message << '\n';
    return 1;
  }
  if (options.json) {
    std::cout << (*reply)["fleets"].dump(2) << '\n';
    return 0;
  }
  for (const auto& fleet : (*reply)["fleets"])
    print_table(fleet);
  return 0;
}

int fleet_down(const DaemonOptions& options, const std::string& name,
               std::optional<double> timeout_s) {
  auto client = DaemonClient::connect(choose_socket(options.socket));
  if (!client) {
    std::cerr << "vm: " << client.error().message << '\n';
    return kExitSupervisor;
  }
  auto fleet = pick_fleet(*client, name, "");
  if (!fleet) {
    std::cerr << "vm: " << fleet.error().message << '\n';
    return 1;
  }
  json request = {{"op", "fleet_down"}, {"fleet", *fleet}};
  if (timeout_s)
    request["timeout_ms"] = static_cast<std::uint32_t>(*timeout_s * 1000);
  auto reply = client->call(request);
  if (!reply) {
    std::cerr << "vm: " << reply.error().message << '\n';
    return 1;
  }
  if (options.json)
    std::cout << (*reply)["fleet"].dump(2) << '\n';
  else
    print_table((*reply)["fleet"]);
  return 0;
}

int fleet_restart(const DaemonOptions& options, const std::string& name, const std::string& vm) {
  auto client = DaemonClient::connect(choose_socket(options.socket));
  if (!client) {
    std::cerr << "vm: " << client.error().message << '\n';
    return kExitSupervisor;
  }
  auto fleet = pick_fleet(*client, name, vm);
  if (!fleet) {
    std::cerr << "vm: " << fleet.error().message << '\n';
    return 1;
  }
  auto reply = client->call({{"op", "fleet_restart"}, {"fleet", *fleet}, {"vm", vm}});
  if (!reply) {
    std::cerr << "vm: " << reply.error().message << '\n';
    return 1;
  }
  std::cerr << "fleet " << *fleet << ": restarting " << vm << '\n';
  return 0;
}

}  // namespace crosvisor::cli
