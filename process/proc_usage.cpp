#include "process/proc_usage.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <string>

namespace crosvisor::process {
namespace {

// A small /proc file, read with raw reads (a process that ends meanwhile is just missing).
std::optional<std::string> read_proc(pid_t pid, const char* file) {
  const std::string path = "/proc/" + std::to_string(pid) + "/" + file;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return std::nullopt;
  std::string text;
  char buffer[4096];
  ssize_t n;
  while ((n = ::read(fd, buffer, sizeof(buffer))) > 0)
    text.append(buffer, static_cast<std::size_t>(n));
  ::close(fd);
  if (n < 0)
    return std::nullopt;
  return text;
}

std::optional<std::uint64_t> number_at(std::string_view text) {
  const auto start = text.find_first_of("0123456789");
  if (start == std::string_view::npos)
    return std::nullopt;
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data() + start, text.data() + text.size(), value);
  if (error != std::errc())
    return std::nullopt;
  return value;
}

// The value after "key:" at the start of a line.
std::optional<std::uint64_t> keyed(std::string_view text, std::string_view key) {
  std::size_t at = 0;
  while (at < text.size()) {
    const auto end = text.find('\n', at);
    const auto line = text.substr(at, end == std::string_view::npos ? end : end - at);
    if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == ':') {
      const auto value = line.substr(key.size() + 1);
      auto number = number_at(value);
      if (number && value.find("kB") != std::string_view::npos)
        *number *= 1024;
      return number;
    }
    if (end == std::string_view::npos)
      break;
    at = end + 1;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::uint64_t> cpu_usec_from_stat(std::string_view stat, long ticks_per_second) {
  const auto close = stat.rfind(')');
  if (close == std::string_view::npos || ticks_per_second <= 0)
    return std::nullopt;
  // After ")": field 3 (state) is the first; utime and stime are fields 14 and 15.
  std::string_view rest = stat.substr(close + 1);
  std::uint64_t ticks = 0;
  int field = 2;
  std::size_t at = 0;
  while (at < rest.size() && field < 15) {
    at = rest.find_first_not_of(' ', at);
    if (at == std::string_view::npos)
      return std::nullopt;
    const auto end = rest.find(' ', at);
    ++field;
    if (field == 14 || field == 15) {
      auto value = number_at(rest.substr(at, end - at));
      if (!value)
        return std::nullopt;
      ticks += *value;
    }
    if (end == std::string_view::npos)
      break;
    at = end;
  }
  if (field < 15)
    return std::nullopt;
  return ticks * 1'000'000 / static_cast<std::uint64_t>(ticks_per_second);
}

std::optional<std::uint64_t> status_number(std::string_view status, std::string_view key) {
  return keyed(status, key);
}

std::optional<std::uint64_t> io_number(std::string_view io, std::string_view key) {
  return keyed(io, key);
}

ProcessUsage usage_of(pid_t pid) {
  ProcessUsage usage;
  if (auto stat = read_proc(pid, "stat"))
    usage.cpu_usec = cpu_usec_from_stat(*stat, ::sysconf(_SC_CLK_TCK));
  if (auto status = read_proc(pid, "status")) {
    usage.rss_bytes = status_number(*status, "VmRSS");
    usage.threads = status_number(*status, "Threads");
  }
  if (auto io = read_proc(pid, "io")) {
    usage.read_bytes = io_number(*io, "read_bytes");
    usage.write_bytes = io_number(*io, "write_bytes");
  }
  return usage;
}

VmUsage vm_usage_of(pid_t pid, const VmCgroup* cgroup) {
  const auto own = usage_of(pid);
  VmUsage usage;
  usage.cpu_usec = own.cpu_usec;
  usage.rss_bytes = own.rss_bytes;
  usage.read_bytes = own.read_bytes;
  usage.write_bytes = own.write_bytes;
  usage.tasks = own.threads;
  if (!cgroup)
    return usage;
  const auto counted = cgroup->usage();
  usage.cgroup = true;
  usage.memory_bytes = counted.memory_bytes;
  usage.memory_limit_bytes = counted.memory_limit_bytes;
  if (counted.cpu_usec)
    usage.cpu_usec = counted.cpu_usec;
  if (counted.pids)
    usage.tasks = counted.pids;
  return usage;
}

}  // namespace crosvisor::process
