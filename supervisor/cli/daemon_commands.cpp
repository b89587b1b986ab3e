#include "supervisor/cli/daemon_commands.hpp"

#include <cstdio>
#include <iostream>

#include "protocol/requests.hpp"
#include "supervisor/cli/daemon_client.hpp"
#include "supervisor/exit_codes.hpp"

namespace crosvisor::cli {
namespace {

using json = nlohmann::json;

// A connected client, or the error printed and the exit code to return.
std::optional<DaemonClient> connect_or_report(const DaemonOptions& options, int& exit_code) {
  auto client = DaemonClient::connect(choose_socket(options.socket));
  if (!client) {
    std::cerr << "vm: " << client.error().message << '\n';
    exit_code = kExitSupervisor;
    return std::nullopt;
  }
  return std::move(*client);
}

std::string uptime(std::int64_t ms) {
  if (ms <= 0)
    return "-";
  const auto s = ms / 1000;
  char text[32];
  if (s < 3600) {
    std::snprintf(text, sizeof(text), "%lldm%02llds", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  } else {
    std::snprintf(text, sizeof(text), "%lldh%02lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>((s / 60) % 60));
  }
  return text;
}

int refused(const Error& error) {
  std::cerr << "vm: " << error.message << '\n';
  return 1;
}

}  // namespace

int list_vms(const DaemonOptions& options, bool all) {
  int code = 0;
  auto client = connect_or_report(options, code);
  if (!client)
    return code;
  auto reply = client->call({{"op", "list"}, {"all", all}});
  if (!reply)
    return refused(reply.error());
  const json& vms = (*reply)["vms"];
  if (options.json) {
    std::cout << vms.dump(2) << '\n';
    return 0;
  }
  std::printf("%-24s %-6s %-9s %-7s %-8s %-8s %s\n", "NAME", "CID", "STATE", "VMM", "PID", "UPTIME",
              "DEBUG");
  for (const auto& vm : vms) {
    auto info = protocol::parse_info(vm);
    if (!info)
      continue;
    std::printf("%-24s %-6u %-9s %-7s %-8d %-8s %s\n", info->name.c_str(), info->cid,
                std::string(to_string(info->state)).c_str(),
                std::string(to_string(info->vmm)).c_str(), info->pid,
                uptime(info->uptime_ms).c_str(), std::string(to_string(info->debug)).c_str());
  }
  return 0;
}

int show_info(const DaemonOptions& options, const std::string& vm) {
  int code = 0;
  auto client = connect_or_report(options, code);
  if (!client)
    return code;
  auto reply = client->call({{"op", "info"}, {"vm", vm}});
  if (!reply)
    return refused(reply.error());
  const json& info = (*reply)["vm"];
  if (options.json) {
    std::cout << info.dump(2) << '\n';
    return 0;
  }
  for (const auto& [key, value] : info.items())
    std::cout << key << ": " << (value.is_string() ? value.get<std::string>() : value.dump())
              << '\n';
  return 0;
}

int stop_vm(const DaemonOptions& options, const std::string& vm, std::optional<double> timeout_s,
            bool force) {
  int code = 0;
  auto client = connect_or_report(options, code);
  if (!client)
    return code;
  json request = {{"op", "stop"}, {"vm", vm}};
  if (force)
    request["force"] = true;
  if (timeout_s)
    request["timeout_ms"] = static_cast<std::uint32_t>(*timeout_s * 1000);
  // The reply comes when the VM is dead.
  auto reply = client->call(request);
  if (!reply)
    return refused(reply.error());
  if (options.json) {
    std::cout << reply->dump(2) << '\n';
    return 0;
  }
  std::cerr << "vm " << vm << ": dead";
  if (reply->contains("reason"))
    std::cerr << " (" << (*reply)["reason"].get<std::string>() << ")";
  if (!reply->value("detail", std::string()).empty())
    std::cerr << ": " << (*reply)["detail"].get<std::string>();
  std::cerr << '\n';
  return 0;
}

int show_logs(const DaemonOptions& options, const std::string& vm, std::uint32_t lines,
              bool follow) {
  int code = 0;
  auto client = connect_or_report(options, code);
  if (!client)
    return code;
  auto reply = client->call({{"op", "logs"}, {"vm", vm}, {"lines", lines}, {"follow", follow}});
  if (!reply)
    return refused(reply.error());
  for (const auto& line : (*reply)["lines"])
    std::cout << line.get<std::string>() << '\n';
  std::cout.flush();
  while (follow) {
    auto next = client->next();
    if (!next || !next->has_value())
      return next ? 0 : refused(next.error());
    const json& event = **next;
    const std::string kind = event.value("event", "");
    if (kind == "console") {
      std::cout << event.value("line", "") << std::endl;
    } else if (kind == "state" && event.value("state", "") == "dead") {
      std::cerr << "vm " << event.value("vm", "") << ": dead (" << event.value("reason", "?")
                << ")\n";
      return 0;
    }
  }
  return 0;
}

int show_version(const DaemonOptions& options) {
  std::cout << "vm 0.1.0 (protocol " << protocol::kVersion << ")\n";
  auto client = DaemonClient::connect(choose_socket(options.socket));
  if (!client) {
    std::cout << "crosvisord: not running at " << choose_socket(options.socket).string() << '\n';
    return 0;
  }
  auto reply = client->call({{"op", "version"}});
  if (!reply)
    return refused(reply.error());
  std::cout << "crosvisord " << reply->value("crosvisor", "?") << " (protocol "
            << reply->value("protocol", 0) << ")\n";
  return 0;
}

}  // namespace crosvisor::cli
