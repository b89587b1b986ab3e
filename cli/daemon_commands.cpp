#include "cli/daemon_commands.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <unistd.h>

#include <ctime>
#include <deque>
#include <fstream>
#include <iostream>

#include "cli/daemon_client.hpp"
#include "cli/output.hpp"
#include "core/exit_codes.hpp"
#include "protocol/replies.hpp"
#include "protocol/requests.hpp"

namespace crosvisor::cli {
namespace {

using json = nlohmann::json;

Expected<DaemonClient> connect(const DaemonOptions& options) {
  return find_daemon(DaemonSearch{options.socket});
}

// A user's name ("alice"), or the uid when it has none.
std::string user_name(std::optional<std::uint32_t> uid) {
  if (!uid)
    return "-";
  if (const passwd* entry = ::getpwuid(*uid))
    return entry->pw_name;
  return std::to_string(*uid);
}

void print_info(const VmInfo& info) {
  const auto line = [](const char* key, const std::string& value) {
    std::cout << "  " << key << std::string(12 - std::string_view(key).size(), ' ') << value
              << '\n';
  };
  std::cout << info.name << '\n';
  std::string state(to_string(info.state));
  if (info.reason)
    state += " (" + std::string(to_string(*info.reason)) + ")";
  if (!info.detail.empty())
    state += ": " + info.detail;
  line("state", state);
  line("vmm", std::string(to_string(info.vmm)) + ", pid " + or_dash(info.pid));
  line("cid", or_dash(info.cid));
  line("memory", std::to_string(info.memory_mib) + " MiB");
  line("cpus", std::to_string(info.cpus));
  line("kernel", info.kernel.empty() ? "-" : info.kernel);
  if (info.disks.empty())
    line("disks", "-");
  for (std::size_t i = 0; i < info.disks.size(); ++i)
    line(i == 0 ? "disks" : "",
         "vd" + std::string(1, static_cast<char>('a' + i)) + ": " + info.disks[i]);
  line("ready on", info.ready_on == "console" ? "a line on its console"
                   : info.ready_on == "vsock" ? "its vsock callback"
                                              : "- (up once it runs)");
  line("debug", std::string(to_string(info.debug)));
  line("console log", info.console_log.empty() ? "- (debug = none keeps none)" : info.console_log);
  line("fleet", info.fleet.empty() ? "-" : info.fleet);
  for (std::size_t i = 0; i < info.nics.size(); ++i) {
    const auto& nic = info.nics[i];
    line(i == 0 ? "networks" : "",
         "eth" + std::to_string(i) + ": " + nic.network + ", " + nic.address + ", mac " + nic.mac);
  }
  if (!info.last_dump.empty())
    line("last dump", info.last_dump);
  if (info.gdb_port) {
    line("gdb", "127.0.0.1:" + std::to_string(*info.gdb_port) +
                    " (gdb: target remote :" + std::to_string(*info.gdb_port) + ")");
  }
  line("started", info.started_at ? local_time(*info.started_at) : "-");
  line("uptime", duration_text(info.uptime_ms));
  line("owner", user_name(info.owner_uid) +
                    (info.owner_uid ? " (uid " + std::to_string(*info.owner_uid) + ")" : ""));
}

// A dead VM's console: its log file, which is its owner's to read; its last boot (the lines after
// the last boot marker), or its last `lines` lines.
int print_dead_log(const std::string& vm, const std::string& path, std::uint32_t lines) {
  std::ifstream file(path);
  if (!file) {
    return report(Error{ErrorKind::not_found,
                        "VM " + vm + " is dead; its console log " + path + " cannot be read"});
  }
  std::deque<std::string> kept;
  std::string line;
  while (std::getline(file, line)) {
    // From the last boot marker (vmm/console_log.cpp) on: an earlier boot's lines are not this
    // VM's.
    if (line.rfind("--- crosvisor: " + vm + " booted at ", 0) == 0)
      kept.clear();
    kept.push_back(line);
    if (lines != 0 && kept.size() > lines)
      kept.pop_front();
  }
  for (const auto& kept_line : kept)
    std::cout << kept_line << '\n';
  std::cerr << "vm " << vm << ": dead; this is its console log, " << path << '\n';
  return 0;
}

}  // namespace

Expected<protocol::Target> target_named(const std::string& text) {
  auto target = protocol::parse_target(text);
  if (!target && text.empty())
    return make_error(ErrorKind::not_found, "name a VM, or give its CID");
  if (!target)
    return make_error(ErrorKind::not_found, "no VM has CID " + text + " (CIDs end at 4294967295)");
  return target;
}

namespace {

// The "vms" of `request`'s reply for a table; nothing when the command is done: it failed
// (`exit_code` says how) or --json printed them.
std::optional<json> vms_for_table(const DaemonOptions& options,
                                  const protocol::RequestBody& request, int& exit_code) {
  exit_code = 0;
  auto client = connect(options);
  if (!client) {
    exit_code = report(client.error());
    return std::nullopt;
  }
  if (options.json) {
    // Printed as it is read: a list of thousands of VMs is megabytes, and a document of it
    // would cost more than everything else the command does.
    auto printed = client->call_printing(request, "vms");
    if (!printed)
      exit_code = report(printed.error());
    else
      std::cout << *printed << '\n';
    return std::nullopt;
  }
  auto reply = client->call(request);
  if (!reply) {
    exit_code = report(reply.error());
    return std::nullopt;
  }
  return std::move((*reply)["vms"]);
}

}  // namespace

int list_vms(const DaemonOptions& options, bool all_users, bool dead, bool quiet) {
  int exit_code = 0;
  const auto vms = vms_for_table(options, protocol::ListRequest{all_users, dead}, exit_code);
  if (!vms)
    return exit_code;
  if (quiet) {
    for (const auto& vm : *vms)
      std::cout << vm.value("name", "") << '\n';
    return 0;
  }
  std::vector<std::string> columns = {"NAME", "STATE",  "CID",   "VMM",
                                      "PID",  "UPTIME", "DEBUG", "OWNER"};
  if (dead)
    columns.push_back("ENDED");
  Table table(columns);
  for (const auto& vm : *vms) {
    auto info = protocol::parse_info(vm);
    if (!info)
      continue;
    std::string state(to_string(info->state));
    if (info->reason)
      state += " (" + std::string(to_string(*info->reason)) + ")";
    std::vector<std::string> row = {info->name,
                                    state,
                                    or_dash(info->cid),
                                    std::string(to_string(info->vmm)),
                                    or_dash(info->pid),
                                    duration_text(info->uptime_ms),
                                    std::string(to_string(info->debug)),
                                    user_name(info->owner_uid)};
    if (dead)
      row.push_back(info->ended_at ? local_time(*info->ended_at) : "-");
    table.add(row);
  }
  table.print();
  return 0;
}

namespace {

std::string bytes_text(const json& value) {
  if (!value.is_number())
    return "-";
  const double bytes = value.get<double>();
  char text[32];
  if (bytes >= 1024.0 * 1024 * 1024)
    std::snprintf(text, sizeof(text), "%.1f GiB", bytes / (1024.0 * 1024 * 1024));
  else
    std::snprintf(text, sizeof(text), "%.1f MiB", bytes / (1024.0 * 1024));
  return text;
}

std::string cpu_text(const json& usec) {
  if (!usec.is_number())
    return "-";
  char text[32];
  std::snprintf(text, sizeof(text), "%.2f s", usec.get<double>() / 1e6);
  return text;
}

std::string number_text(const json& value) {
  return value.is_number() ? std::to_string(value.get<std::uint64_t>()) : "-";
}

}  // namespace

int vm_stats(const DaemonOptions& options, const std::vector<std::string>& names, bool all_users) {
  int exit_code = 0;
  const auto vms = vms_for_table(options, protocol::StatsRequest{names, all_users}, exit_code);
  if (!vms)
    return exit_code;
  Table table({"NAME", "STATE", "CPU", "RSS", "MEMORY", "LIMIT", "READ", "WRITTEN", "TASKS",
               "UPTIME", "RESTARTS", "FROM"});
  for (const auto& vm : *vms) {
    table.add({vm.value("name", ""), vm.value("state", ""), cpu_text(vm["cpu_usec"]),
               bytes_text(vm["rss_bytes"]), bytes_text(vm["memory_bytes"]),
               bytes_text(vm["memory_limit_bytes"]), bytes_text(vm["read_bytes"]),
               bytes_text(vm["write_bytes"]), number_text(vm["tasks"]),
               duration_text(vm.value("uptime_ms", std::int64_t{0})),
               std::to_string(vm.value("restarts", 0u)),
               vm["source"].is_string() ? vm["source"].get<std::string>() : "-"});
  }
  table.print();
  return 0;
}

int show_info(const DaemonOptions& options, const std::string& vm) {
  auto target = target_named(vm);
  if (!target)
    return report(target.error());
  auto client = connect(options);
  if (!client)
    return report(client.error());
  auto reply = client->call(protocol::InfoRequest{*target});
  if (!reply)
    return report(reply.error());
  const json& info = (*reply)["vm"];
  if (options.json) {
    std::cout << info.dump(2) << '\n';
    return 0;
  }
  auto parsed = protocol::parse_info(info);
  if (!parsed)
    return report(parsed.error());
  print_info(*parsed);
  return 0;
}

int stop_vm(const DaemonOptions& options, const std::string& vm, std::optional<double> timeout_s,
            bool force) {
  auto target = target_named(vm);
  if (!target)
    return report(target.error());
  auto client = connect(options);
  if (!client)
    return report(client.error());
  protocol::StopRequest request{.vm = *target, .force = force};
  request.timeout_ms = milliseconds_of(timeout_s);
  // The reply comes when the VM is dead.
  auto reply = client->call(request);
  if (!reply)
    return report(reply.error());
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
  auto target = target_named(vm);
  if (!target)
    return report(target.error());
  auto client = connect(options);
  if (!client)
    return report(client.error());
  auto reply = client->call(protocol::LogsRequest{*target, lines, follow});
  if (!reply)
    return report(reply.error());
  if (reply->value("dead", false))
    return print_dead_log(vm, reply->value("console_log", std::string()), lines);
  if (options.json && !follow)
    std::cout << (*reply)["lines"].dump(2) << '\n';
  for (const auto& line : (*reply)["lines"]) {
    if (options.json && follow)
      std::cout << json{{"vm", vm}, {"line", line}}.dump() << '\n';
    else if (!options.json)
      std::cout << line.get<std::string>() << '\n';
  }
  std::cout.flush();
  while (follow) {
    auto next = client->next();
    if (!next || !next->has_value())
      return next ? 0 : report(next.error());
    const json& event = **next;
    const std::string kind = event.value("event", "");
    if (kind == "console") {
      if (options.json)
        std::cout << json{{"vm", event.value("vm", "")}, {"line", event.value("line", "")}}.dump()
                  << std::endl;
      else
        std::cout << event.value("line", "") << std::endl;
    } else if (kind == "console_dropped") {
      std::cerr << "vm " << event.value("vm", "?") << ": " << event.value("lines", 0)
                << " console lines were dropped while this terminal was not reading (the "
                   "console log keeps them)\n";
    } else if (kind == "state" && event.value("state", "") == "dead") {
      std::cerr << "vm " << event.value("vm", "") << ": dead (" << event.value("reason", "?")
                << ")\n";
      return 0;
    }
  }
  return 0;
}

int show_version(const DaemonOptions& options) {
  if (options.json) {
    json out = {{"vm", CROSVISOR_VERSION}, {"protocol", protocol::kVersion}};
    if (auto client = connect(options)) {
      if (auto reply = client->call(protocol::VersionRequest{}))
        out["crosvisord"] = {{"version", reply->value("crosvisor", "")},
                             {"protocol", reply->value("protocol", 0)},
                             {"socket", client->socket_path().string()},
                             {"uid", reply->value("uid", 0u)}};
    }
    std::cout << out.dump(2) << '\n';
    return 0;
  }
  std::cout << "vm " << CROSVISOR_VERSION << " (protocol " << protocol::kVersion << ")\n";
  auto client = connect(options);
  if (!client) {
    std::cout << "crosvisord: " << client.error().message << '\n';
    return 0;
  }
  auto reply = client->call(protocol::VersionRequest{});
  if (!reply)
    return report(reply.error());
  std::cout << "crosvisord " << reply->value("crosvisor", "?") << " (protocol "
            << reply->value("protocol", 0) << ") at " << client->socket_path().string()
            << ", running as " << user_name(reply->value("uid", 0u)) << '\n';
  return 0;
}

int dump_vm(const DaemonOptions& options, const std::string& vm,
            const std::optional<std::filesystem::path>& file) {
  auto target = target_named(vm);
  if (!target)
    return report(target.error());
  std::vector<UniqueFd> fds;
  if (file) {
    UniqueFd fd(::open(file->c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd && errno == EEXIST)
      return report(Error{ErrorKind::conflict,
                          file->string() + " exists: vm dump does not write over a file"});
    if (!fd)
      return report(errno_error(ErrorKind::io, file->string(), errno));
    fds.push_back(std::move(fd));
  }
  // What this command created goes again if no dump lands in it.
  const auto undo = [&] {
    if (file)
      ::unlink(file->c_str());
  };
  auto client = connect(options);
  if (!client) {
    undo();
    return report(client.error());
  }
  std::cerr << "vm " << vm << ": asking for a memory dump (the guest pauses meanwhile)\n";
  auto reply = client->call(protocol::DumpRequest{*target, file.has_value()}, {}, fds);
  if (!reply) {
    undo();
    return report(reply.error());
  }
  std::cout << (file ? file->string() : reply->value("path", std::string())) << '\n';
  return 0;
}

}  // namespace crosvisor::cli
