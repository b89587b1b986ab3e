#include "cli/history_commands.hpp"

#include <poll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <ctime>
#include <iostream>

#include "cli/output.hpp"
#include "core/exit_codes.hpp"
#include "core/unique_fd.hpp"
#include "core/unix_time.hpp"
#include "process/signals.hpp"
#include "protocol/replies.hpp"

namespace crosvisor::cli {
namespace {

using json = nlohmann::json;

std::string event_line(const SupervisorEvent& event) {
  std::string line =
      local_time(event.at_ms, "%Y-%m-%d %H:%M:%S") + "  " + event.event.vm + "  " + event.kind;
  if (event.event.reason)
    line += " (" + std::string(to_string(*event.event.reason)) + ")";
  if (event.kind == "running" && event.event.pid)
    line += ": pid " + std::to_string(*event.event.pid) +
            (event.event.cid ? ", cid " + std::to_string(*event.event.cid) : "");
  else if (!event.event.detail.empty())
    line += ": " + event.event.detail;
  if (!event.fleet.empty())
    line += "  [fleet " + event.fleet + "]";
  return line;
}

bool reached(VmState state, VmState until) {
  if (until == VmState::running)
    return state == VmState::running || state == VmState::ready;
  return state == until;
}

// The exit code of a wait that ended with the VM's death.
int death_code(VmState until, std::optional<DeathReason> reason) {
  const int code = exit_code_for(reason.value_or(DeathReason::unknown));
  if (until == VmState::dead)
    return code;
  return code == 0 ? kExitRefused : code;  // it never got there
}

}  // namespace

std::optional<std::int64_t> parse_since(const std::string& text, std::int64_t now) {
  if (text.empty())
    return std::nullopt;
  std::int64_t number = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (error == std::errc() && number >= 0) {
    const std::string_view unit(end, text.data() + text.size() - end);
    if (unit.empty())
      return number * 1000;  // Unix seconds
    const std::int64_t scale = unit == "s"   ? 1
                               : unit == "m" ? 60
                               : unit == "h" ? 3600
                               : unit == "d" ? 86400
                                             : 0;
    if (scale != 0 && unit.size() == 1)
      return now - number * scale * 1000;
  }
  std::tm local{};
  local.tm_isdst = -1;
  const char* rest = ::strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &local);
  if (rest && *rest == '\0')
    return static_cast<std::int64_t>(std::mktime(&local)) * 1000;
  return std::nullopt;
}

std::optional<std::int64_t> since_option(const std::string& text) {
  auto from = parse_since(text, unix_now_ms());
  if (!from)
    std::cerr << "vm events: --since '" << text
              << "' is not a time (30s, 5m, 2h, 1d, Unix seconds or YYYY-MM-DDTHH:MM:SS)\n";
  return from;
}

int watch_events(const DaemonOptions& options, const std::optional<std::string>& since,
                 const std::vector<std::string>& names, bool all_users) {
  protocol::EventsRequest request{std::nullopt, names, all_users};
  if (since) {
    auto from = since_option(*since);
    if (!from)
      return kExitUsage;
    request.since_ms = static_cast<std::uint64_t>(*from);
  }
  const sigset_t stop_signals = process::block_stop_signals();
  UniqueFd signals(signalfd(-1, &stop_signals, SFD_CLOEXEC));
  auto client = find_daemon(DaemonSearch{options.socket});
  if (!client)
    return report(client.error());
  client->watch_signals(signals.get());
  const auto print = [&](const json& message) {
    if (message.value("event", "") != "vm")
      return;
    if (options.json) {
      std::cout << message.dump() << std::endl;
      return;
    }
    if (auto event = protocol::parse_supervisor_event(message))
      std::cout << event_line(*event) << std::endl;
  };
  auto reply = client->call(request, print);
  if (!reply)
    return reply.error().kind == ErrorKind::interrupted ? 0 : report(reply.error());
  for (;;) {
    auto next = client->next();
    if (!next) {
      if (next.error().kind == ErrorKind::interrupted)
        return 0;  // Ctrl-C ends a stream: nothing went wrong
      return report(next.error());
    }
    if (!next->has_value())
      return 0;
    print(**next);
  }
}

int wait_on(DaemonClient& client, const std::string& vm, VmState until, bool say_states,
            int signal_fd) {
  auto target = target_named(vm);
  if (!target)
    return report(target.error());
  // The events first, then the VM's state now: nothing happens unseen in between.
  client.watch_signals(signal_fd);
  std::optional<int> result;
  std::optional<VmState> last;
  const auto on_state = [&](VmState state, std::optional<DeathReason> reason,
                            const std::string& text) {
    if (say_states && state != last && !text.empty())
      std::cerr << text << '\n';
    last = state;
    if (reached(state, until))
      result = state == VmState::dead ? death_code(until, reason) : 0;
    else if (state == VmState::dead)
      result = death_code(until, reason);
  };
  const auto on_message = [&](const json& message) {
    if (message.value("event", "") != "vm" || message.value("vm", "") != vm)
      return;
    auto event = protocol::parse_supervisor_event(message);
    if (event && event->kind != "restarted")
      on_state(event->event.state, event->event.reason, event_text(event->event));
  };
  auto watching = client.call(protocol::EventsRequest{std::nullopt, {vm}, false}, on_message);
  if (!watching)
    return report(watching.error());
  auto info = client.call(protocol::InfoRequest{*target}, on_message);
  if (!info)
    return report(info.error());
  auto now = protocol::parse_info((*info)["vm"]);
  // A VM with nothing to tell it ready by is ready once it runs (as a fleet counts it up): a
  // wait for more would last forever.
  if (now && until == VmState::ready && now->ready_on.empty())
    until = VmState::running;
  if (now && !result) {
    VmEvent current;
    current.vm = now->name;
    current.state = now->state;
    current.reason = now->reason;
    current.detail = now->detail;
    current.pid = now->pid;
    current.cid = now->cid;
    on_state(now->state, now->reason, event_text(current));
  }
  while (!result) {
    auto next = client.next();
    if (!next)
      return next.error().kind == ErrorKind::interrupted ? kExitInterrupted + client.last_signal()
                                                         : report(next.error());
    if (!next->has_value())
      return report(Error{ErrorKind::unavailable, "crosvisord went away"});
    on_message(**next);
  }
  return *result;
}

int wait_vm(const DaemonOptions& options, const std::string& vm, VmState until) {
  const sigset_t stop_signals = process::block_stop_signals();
  UniqueFd signals(signalfd(-1, &stop_signals, SFD_CLOEXEC));
  auto client = find_daemon(DaemonSearch{options.socket});
  if (!client)
    return report(client.error());
  return wait_on(*client, vm, until, false, signals.get());
}

int remove_vm(const DaemonOptions& options, const std::string& vm) {
  auto target = target_named(vm);
  if (!target)
    return report(target.error());
  auto client = find_daemon(DaemonSearch{options.socket});
  if (!client)
    return report(client.error());
  auto reply = client->call(protocol::RemoveRequest{*target});
  if (!reply)
    return report(reply.error());
  if (options.json)
    std::cout << reply->dump(2) << '\n';
  return 0;
}

}  // namespace crosvisor::cli
