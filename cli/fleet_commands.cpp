#include "cli/fleet_commands.hpp"

#include <poll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <iostream>

#include "cli/daemon_client.hpp"
#include "cli/output.hpp"
#include "config/fleet_config.hpp"
#include "core/exit_codes.hpp"
#include "process/signals.hpp"
#include "protocol/fleet_json.hpp"

namespace crosvisor::cli {
namespace {

using json = nlohmann::json;

std::string text_or_dash(const json& value) {
  if (value.is_null())
    return "-";
  return value.is_string() ? value.get<std::string>() : value.dump();
}

void print_table(const json& fleet) {
  std::string summary = "fleet " + fleet.value("name", std::string("?")) + ": " +
                        std::to_string(fleet.value("ready", 0)) + " of " +
                        std::to_string(fleet.value("total", 0)) + " ready";
  if (fleet.value("failed", 0) > 0)
    summary += ", " + std::to_string(fleet.value("failed", 0)) + " failed";
  if (fleet.value("blocked", 0) > 0)
    summary += ", " + std::to_string(fleet.value("blocked", 0)) + " blocked";
  if (fleet.value("persistent", false))
    summary += " (persistent: up whenever crosvisord starts)";
  std::cout << summary << '\n';
  Table table({"NAME", "STATE", "CID", "PID", "RESTARTS", "LAST DEATH"}, "  ");
  std::vector<std::string> problems;
  for (const auto& vm : fleet["vms"]) {
    const std::string name = vm.value("name", std::string("?"));
    std::string state = vm.value("state", std::string("?"));
    if (vm.value("failed", false))
      state = "failed";
    else if (vm.value("blocked", false))
      state = "blocked";
    table.add({name, state, text_or_dash(vm.value("cid", json())),
               text_or_dash(vm.value("pid", json())), std::to_string(vm.value("restarts", 0u)),
               text_or_dash(vm.value("last_death", json()))});
    if (vm.contains("problem") && vm["problem"].is_string())
      problems.push_back(name + ": " + vm["problem"].get<std::string>());
  }
  table.print();
  for (const auto& problem : problems)
    std::cout << "  " << problem << '\n';
  std::cout.flush();
}

// A member's death, shown while a fleet is held in the foreground.
void print_member_event(const std::string& fleet, const json& event) {
  if (event.value("event", "") != "state" || event.value("state", "") != "dead")
    return;
  std::cerr << "fleet " << fleet << ": " << event.value("vm", "?") << " died ("
            << event.value("reason", "?") << ")";
  if (!event.value("detail", std::string()).empty())
    std::cerr << ": " << event.value("detail", std::string());
  std::cerr << '\n';
}

Expected<json> status_of(DaemonClient& client, const std::string& name,
                         const std::function<void(const json&)>& on_event = {}) {
  auto reply = client.call(protocol::FleetStatusRequest{.fleet = name}, on_event);
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
  auto reply = client.call(protocol::FleetStatusRequest{});
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
  return make_error(ErrorKind::conflict, "several fleets match: name one with --fleet");
}

Expected<DaemonClient> connect(const DaemonOptions& options) {
  return find_daemon(DaemonSearch{options.socket});
}

}  // namespace

int fleet_check(const std::filesystem::path& file) {
  auto fleet = config::load_fleet_file(file);
  if (!fleet) {
    std::cerr << fleet.error().message << '\n';
    return exit_code_for(fleet.error().kind);
  }
  std::cout << file.string() << ": fleet " << fleet->name << ", " << fleet->vms.size() << " VM(s), "
            << fleet->concurrency << " starting at once: OK\n";
  return 0;
}

int fleet_up(const DaemonOptions& options, const FleetUpOptions& up) {
  auto fleet = config::load_fleet_file(up.file);
  if (!fleet) {
    std::cerr << fleet.error().message << '\n';
    return exit_code_for(fleet.error().kind);
  }
  // The files are opened here, with this user's rights; the daemon gets the fds.
  auto message = protocol::fleet_to_message(*fleet);
  if (!message)
    return report(message.error(), "vm fleet");
  const bool attached = up.foreground || up.until_ready;
  const std::string& name = fleet->name;
  const sigset_t stop_signals = process::block_stop_signals();
  UniqueFd signals(signalfd(-1, &stop_signals, SFD_CLOEXEC));
  auto client = find_or_start_daemon(
      DaemonSearch{options.socket, up.log_level, signals.get()},
      [](const std::string& news) { std::cerr << "vm fleet: " << news << '\n'; });
  if (!client) {
    if (client.error().kind == ErrorKind::interrupted)
      return kExitInterrupted + SIGINT;
    return report(client.error(), "vm fleet");
  }
  client->watch_signals(signals.get());
  std::vector<json*> descriptions;
  for (auto& vm : message->fleet["vms"])
    descriptions.push_back(&vm["vm"]);
  if (auto filled = fill_default_binaries(*client, descriptions); !filled) {
    if (filled.error().kind == ErrorKind::interrupted)
      return kExitInterrupted + client->last_signal();
    return report(filled.error(), "vm fleet");
  }
  auto reply = client->call(
      protocol::FleetUpRequest{message->fleet, attached, up.persist, up.cluster}, {}, message->fds);
  message->fds.clear();
  if (reply && up.cluster) {
    // Kept in etcd; the coordinator places its VMs, and each host starts its own.
    if (options.json)
      std::cout << reply->dump(2) << '\n';
    else
      std::cerr << "vm fleet: fleet " << name << " (" << reply->value("vms", 0u)
                << " VMs) is the cluster's: vm fleet status --cluster " << name
                << " shows where they run\n";
    return 0;
  }
  if (!reply) {
    if (reply.error().kind == ErrorKind::interrupted) {
      if (!attached)
        std::cerr << "vm fleet: interrupted; fleet " << name
                  << " may still come up in crosvisord (vm fleet status " << name << ")\n";
      return kExitInterrupted + client->last_signal();
    }
    return report(reply.error(), "vm fleet");
  }
  bool going_down = false;  // deaths are what was asked for then: the final table tells
  const auto on_event = [&](const json& event) {
    if (attached && !going_down)
      print_member_event(name, event);
  };

  // Progress until every VM is up, failed or blocked by one that failed.
  const bool terminal = ::isatty(STDERR_FILENO) == 1;
  std::string last_line;
  json status;
  int interrupted_by = 0;
  for (;;) {
    auto current = status_of(*client, name, on_event);
    if (!current) {
      if (current.error().kind == ErrorKind::interrupted) {
        interrupted_by = client->last_signal();
        break;
      }
      return report(current.error(), "vm fleet");
    }
    status = *current;
    int starting = 0;
    int waiting = 0;
    for (const auto& vm : status["vms"]) {
      const std::string state = vm.value("state", "");
      // Up (counted as ready) is not starting: a VM without a condition to be ready on is up
      // once it runs.
      const bool done =
          vm.value("failed", false) || vm.value("blocked", false) || vm.value("up", false);
      starting += !done && (state == "starting" || state == "running");
      waiting += !done && state == "created";
    }
    char line[200];
    std::snprintf(line, sizeof(line),
                  "fleet %s: %d/%d ready, %d starting, %d waiting, %d failed, %d blocked",
                  name.c_str(), status.value("ready", 0), status.value("total", 0), starting,
                  waiting, status.value("failed", 0), status.value("blocked", 0));
    if (line != last_line) {
      if (terminal)
        std::fprintf(stderr, "\r%-78s", line);
      else
        std::fprintf(stderr, "%s\n", line);
      last_line = line;
    }
    if (status.value("ready", 0) + status.value("failed", 0) + status.value("blocked", 0) >=
        status.value("total", 0))
      break;
    auto idle = client->next(250);  // events while waiting; a signal ends the wait
    if (!idle) {
      if (idle.error().kind == ErrorKind::interrupted) {
        interrupted_by = client->last_signal();
        break;
      }
      return report(idle.error(), "vm fleet");
    }
    if (idle->has_value())
      on_event(**idle);
  }
  if (terminal)
    std::fprintf(stderr, "\n");
  // --json: one document on stdout, the fleet's status (with `down` for a fleet held here).
  if (!options.json)
    print_table(status);
  else if (!attached)
    std::cout << status.dump(2) << '\n';
  const bool complete = status.value("failed", 0) + status.value("blocked", 0) == 0;
  const int exit_code = complete ? kExitOk : kExitRefused;
  if (!complete && interrupted_by == 0)
    std::cerr << "fleet " << name << ": not every VM came up (see above)\n";
  if (!attached) {
    if (interrupted_by != 0) {
      std::cerr << "vm fleet: interrupted; fleet " << name
                << " goes on in crosvisord (vm fleet status " << name << ", vm fleet down " << name
                << ")\n";
      return kExitInterrupted + interrupted_by;
    }
    return exit_code;
  }
  // A fleet that did not come up entirely is not held: it goes down, and the command says why.
  if (up.foreground && !up.until_ready && interrupted_by == 0 && complete) {
    std::cerr << "fleet " << name << ": up; Ctrl-C takes it down\n";
    for (;;) {
      auto next = client->next();
      if (!next) {
        if (next.error().kind == ErrorKind::interrupted) {
          interrupted_by = client->last_signal();
          break;
        }
        return report(next.error(), "vm fleet");
      }
      if (next->has_value())
        on_event(**next);
    }
  }
  // Down, gracefully; a further Ctrl-C kills every VM of the fleet at once.
  going_down = true;
  std::cerr << "fleet " << name << ": going down (press Ctrl-C again to kill its VMs now)\n";
  bool forced = false;
  client->watch_signals(signals.get(), [&](int) {
    if (!forced) {
      forced = true;
      std::cerr << "fleet " << name << ": killing its VMs\n";
      (void)client->send(protocol::FleetDownRequest{.fleet = name, .force = true});
    }
    return true;  // go on waiting for the fleet to be down
  });
  auto downed = client->call(protocol::FleetDownRequest{.fleet = name}, on_event);
  if (!downed)
    return report(downed.error(), "vm fleet");
  if (options.json)
    std::cout << json{{"up", status}, {"down", (*downed)["fleet"]}}.dump(2) << '\n';
  else
    print_table((*downed)["fleet"]);
  return interrupted_by != 0 ? kExitInterrupted + interrupted_by : exit_code;
}

int fleet_status(const DaemonOptions& options, const std::string& name, bool all_users,
                 bool quiet) {
  auto client = connect(options);
  if (!client)
    return report(client.error());
  auto reply = client->call(protocol::FleetStatusRequest{name, all_users});
  if (!reply)
    return report(reply.error());
  if (options.json) {
    std::cout << (*reply)["fleets"].dump(2) << '\n';
    return 0;
  }
  if (quiet) {
    for (const auto& fleet : (*reply)["fleets"])
      std::cout << fleet.value("name", "") << '\n';
    return 0;
  }
  if ((*reply)["fleets"].empty())
    std::cout << "no fleets\n";
  for (const auto& fleet : (*reply)["fleets"])
    print_table(fleet);
  return 0;
}

int fleet_down(const DaemonOptions& options, const std::string& name,
               std::optional<double> timeout_s, bool force) {
  auto client = connect(options);
  if (!client)
    return report(client.error());
  auto fleet = pick_fleet(*client, name, "");
  if (!fleet)
    return report(fleet.error());
  protocol::FleetDownRequest request{.fleet = *fleet, .force = force};
  request.timeout_ms = milliseconds_of(timeout_s);
  auto reply = client->call(request);
  if (!reply)
    return report(reply.error());
  if (options.json)
    std::cout << (*reply)["fleet"].dump(2) << '\n';
  else
    print_table((*reply)["fleet"]);
  return 0;
}

int fleet_down_all(const DaemonOptions& options, bool all_users, std::optional<double> timeout_s,
                   bool force) {
  auto client = connect(options);
  if (!client)
    return report(client.error());
  protocol::FleetDownRequest request{.force = force, .all = true, .all_users = all_users};
  request.timeout_ms = milliseconds_of(timeout_s);
  auto reply = client->call(request);
  if (!reply)
    return report(reply.error());
  if (options.json) {
    std::cout << (*reply)["fleets"].dump(2) << '\n';
    return kExitOk;
  }
  if ((*reply)["fleets"].empty())
    std::cerr << "no fleet was up\n";
  for (const auto& fleet : (*reply)["fleets"])
    print_table(fleet);
  return kExitOk;
}

int fleet_restart(const DaemonOptions& options, const std::string& name, const std::string& vm) {
  auto client = connect(options);
  if (!client)
    return report(client.error());
  auto fleet = pick_fleet(*client, name, vm);
  if (!fleet)
    return report(fleet.error());
  std::cerr << "fleet " << *fleet << ": restarting " << vm << '\n';
  auto target = protocol::parse_target(vm);
  if (!target)
    return report(Error{ErrorKind::not_found, "fleet " + *fleet + " has no VM " + vm});
  auto reply = client->call(protocol::FleetRestartRequest{*fleet, *target});
  if (!reply)
    return report(reply.error());
  const json& member = (*reply)["vm"];
  if (options.json) {
    std::cout << member.dump(2) << '\n';
  } else if (member.value("failed", false)) {
    std::cerr << "fleet " << *fleet << ": " << vm
              << " did not come up again: " << text_or_dash(member.value("problem", json()))
              << '\n';
  } else {
    std::cerr << "fleet " << *fleet << ": " << vm << " is " << member.value("state", "?")
              << " again (pid " << text_or_dash(member.value("pid", json())) << ", cid "
              << text_or_dash(member.value("cid", json())) << ")\n";
  }
  return member.value("failed", false) ? kExitRefused : kExitOk;
}

int fleet_forget(const DaemonOptions& options, const std::string& name) {
  auto client = connect(options);
  if (!client)
    return report(client.error());
  auto reply = client->call(protocol::FleetForgetRequest{name});
  if (!reply)
    return report(reply.error());
  std::cerr << "fleet " << name
            << " is no longer persistent: it will not come up when crosvisord starts\n";
  return kExitOk;
}

}  // namespace crosvisor::cli
