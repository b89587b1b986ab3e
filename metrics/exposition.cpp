#include "metrics/exposition.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "process/proc_identity.hpp"
#include "process/proc_usage.hpp"

namespace crosvisor::metrics {
namespace {

using json = nlohmann::json;

struct Family {
  const char* name;
  const char* type;
  const char* help;
  const char* field;  // in stats_json
  double scale;       // to base units
};

// Each per-VM figure: its name, type, help and where it comes from.
constexpr Family kVmFamilies[] = {
    {"crosvisor_vm_cpu_seconds_total", "counter",
     "CPU time the VM's VMM (and, with a cgroup, all it started) has used", "cpu_usec", 1e-6},
    {"crosvisor_vm_resident_memory_bytes", "gauge", "The VMM's resident memory", "rss_bytes", 1},
    {"crosvisor_vm_cgroup_memory_bytes", "gauge",
     "Memory charged to the VMM's cgroup, page cache included", "memory_bytes", 1},
    {"crosvisor_vm_memory_limit_bytes", "gauge", "The VMM cgroup's memory limit",
     "memory_limit_bytes", 1},
    {"crosvisor_vm_block_read_bytes_total", "counter", "Bytes the VMM read from storage",
     "read_bytes", 1},
    {"crosvisor_vm_block_written_bytes_total", "counter", "Bytes the VMM wrote to storage",
     "write_bytes", 1},
    {"crosvisor_vm_tasks", "gauge", "The VMM's processes and threads", "tasks", 1},
    {"crosvisor_vm_uptime_seconds", "gauge", "Time since the VMM started", "uptime_ms", 1e-3},
    {"crosvisor_vm_restarts_total", "counter", "Restarts of the VM by its fleet", "restarts", 1},
    {"crosvisor_vm_memory_size_bytes", "gauge", "The guest's memory as configured", "memory_mib",
     1024.0 * 1024.0},
    {"crosvisor_vm_cpus", "gauge", "The guest's CPUs as configured", "cpus", 1},
};

std::string labels_of(const json& vm) {
  std::string labels = "vm=\"" + label_value(vm.value("name", "")) + "\"";
  labels += ",owner=\"" +
            (vm["owner_uid"].is_number() ? std::to_string(vm["owner_uid"].get<std::uint32_t>())
                                         : std::string()) +
            "\"";
  labels += ",fleet=\"" +
            label_value(vm["fleet"].is_string() ? vm["fleet"].get<std::string>() : std::string()) +
            "\"";
  return labels;
}

void header(std::ostringstream& out, const char* name, const char* type, const char* help) {
  out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
}

std::string number(double value) {
  std::ostringstream text;
  text.precision(17);
  text << value;
  return text.str();
}

}  // namespace

std::string label_value(const std::string& text) {
  std::string escaped;
  for (const char c : text) {
    if (c == '\\')
      escaped += "\\\\";
    else if (c == '"')
      escaped += "\\\"";
    else if (c == '\n')
      escaped += "\\n";
    else
      escaped += c;
  }
  return escaped;
}

DaemonFigures own_figures(const std::string& version) {
  DaemonFigures figures;
  figures.version = version;
  const auto own = process::usage_of(::getpid());
  figures.resident_bytes = own.rss_bytes.value_or(0);
  figures.cpu_seconds = static_cast<double>(own.cpu_usec.value_or(0)) / 1e6;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++figures.open_fds;
  // Its start in ticks since boot, and the boot's Unix time (/proc/stat's btime).
  if (auto started = process::process_start_time(::getpid())) {
    std::ifstream stat("/proc/stat");
    std::string key;
    std::uint64_t value = 0;
    while (stat >> key) {
      if (key == "btime" && stat >> value) {
        figures.start_time_seconds =
            static_cast<double>(value) +
            static_cast<double>(*started) / static_cast<double>(::sysconf(_SC_CLK_TCK));
        break;
      }
    }
  }
  return figures;
}

std::string exposition(const json& vms, const DaemonFigures& daemon) {
  std::ostringstream out;
  header(out, "crosvisor_vm_up", "gauge", "1 while the VM's VMM runs (state running or ready)");
  for (const auto& vm : vms) {
    const std::string state = vm.value("state", "");
    out << "crosvisor_vm_up{" << labels_of(vm) << ",vmm=\"" << label_value(vm.value("vmm", ""))
        << "\",state=\"" << label_value(state) << "\"} "
        << (state == "running" || state == "ready" ? 1 : 0) << '\n';
  }
  for (const auto& family : kVmFamilies) {
    header(out, family.name, family.type, family.help);
    for (const auto& vm : vms) {
      const auto& value = vm.contains(family.field) ? vm[family.field] : json();
      if (value.is_number())
        out << family.name << '{' << labels_of(vm) << "} "
            << number(value.get<double>() * family.scale) << '\n';
    }
  }
  std::map<std::string, int> by_state;
  for (const auto& vm : vms)
    ++by_state[vm.value("state", "")];
  header(out, "crosvisor_vms", "gauge", "Live VMs, by state");
  for (const auto& [state, count] : by_state)
    out << "crosvisor_vms{state=\"" << label_value(state) << "\"} " << count << '\n';
  header(out, "crosvisor_stats_up", "gauge",
         "1 when the VMs' figures could be had from crosvisord's service, 0 when not");
  out << "crosvisor_stats_up " << (daemon.stats_failed ? 0 : 1) << '\n';
  header(out, "crosvisor_build_info", "gauge", "crosvisord's version");
  out << "crosvisor_build_info{version=\"" << label_value(daemon.version) << "\"} 1\n";
  header(out, "process_resident_memory_bytes", "gauge", "crosvisord's resident memory");
  out << "process_resident_memory_bytes " << daemon.resident_bytes << '\n';
  header(out, "process_open_fds", "gauge", "crosvisord's open file descriptors");
  out << "process_open_fds " << daemon.open_fds << '\n';
  header(out, "process_cpu_seconds_total", "counter", "crosvisord's CPU time");
  out << "process_cpu_seconds_total " << number(daemon.cpu_seconds) << '\n';
  header(out, "process_start_time_seconds", "gauge", "When crosvisord started (Unix time)");
  out << "process_start_time_seconds " << number(daemon.start_time_seconds) << '\n';
  return out.str();
}

}  // namespace crosvisor::metrics
