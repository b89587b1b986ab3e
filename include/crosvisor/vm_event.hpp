// What subscribers of a VM hear: state changes (in order, ending with `dead` and its reason) and,
// for debuggable VMs, the console.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crosvisor/vm_spec.hpp"
#include "crosvisor/vm_state.hpp"

namespace crosvisor {

struct VmEvent {
  std::string vm;
  VmState state = VmState::created;
  std::optional<DeathReason> reason;  // set when state == dead
  std::string detail;                 // pid when running; exit status and cause when dead
  std::optional<pid_t> pid;           // set when state == running: the VMM's
  std::optional<std::uint32_t> cid;   // set when state == running: the VM's vsock CID
};

// What a debug = full VM's guest printed: one or more whole lines, as many as one read of its
// console brought (a chatty guest's lines are most of a VM's messages: one message per line cost
// the supervisor more than the guest), each ending in '\n'. for_each_line walks them.
struct ConsoleText {
  std::string vm;
  std::string lines;
};

// Calls on_line(std::string_view) for each line of `lines`, without its newline and carriage
// returns (a serial console ends its lines with "\r\n"). A last line without a newline counts.
template <class OnLine>
void for_each_line(std::string_view lines, OnLine&& on_line) {
  std::string cleaned;
  while (!lines.empty()) {
    const std::size_t end = lines.find('\n');
    std::string_view line = lines.substr(0, end);
    lines.remove_prefix(end == std::string_view::npos ? lines.size() : end + 1);
    while (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    if (line.find('\r') == std::string_view::npos) {
      on_line(line);
      continue;
    }
    cleaned.assign(line);  // a carriage return inside a line (a progress bar): dropped
    std::erase(cleaned, '\r');
    on_line(std::string_view(cleaned));
  }
}

// To a client attached to a VM's interactive console: its bytes as they come (prompts without a
// newline included), ...
struct ConsoleBytes {
  std::string vm;
  std::string bytes;
};
// ... and, to the client that wrote to it, that another client took its input over (force).
struct ConsoleWriterLost {
  std::string vm;
};

// A file a client opened itself for a memory dump (vm dump NAME FILE): the supervisor writes into
// that fd, never a path of the client's. `shown` is the client's name for it, for messages.
struct DumpInto {
  std::shared_ptr<const int> fd;
  std::string shown;
};

struct VmInfo {
  std::string name;
  VmState state = VmState::created;
  VmmKind vmm = VmmKind::qemu;
  DebugLevel debug = DebugLevel::none;
  std::optional<pid_t> pid;                // while the VMM runs
  std::optional<std::uint32_t> cid;        // from its grant until the VM is dead
  std::int64_t uptime_ms = 0;              // since the VMM started; 0 before and after
  std::optional<std::int64_t> started_at;  // when the VMM started (Unix time, ms)
  std::optional<std::int64_t> ended_at;    // when it died (Unix time, ms)
  std::optional<std::uint32_t> owner_uid;  // the VmSpec's owner
  std::uint32_t memory_mib = 0;
  std::uint32_t cpus = 0;
  std::string kernel;                     // as the client named it
  std::string bootloader;                 // as the client named it, for a firmware boot
  std::vector<std::string> disks;         // one description per disk, in guest order
  std::string console_log;                // debug = full: where the console is kept
  std::optional<std::uint16_t> gdb_port;  // debug = full: its gdb stub, on 127.0.0.1
  std::string last_dump;                  // debug = full: its latest memory dump, if any
  struct Nic {
    std::string network;
    std::string address;  // what the network's DHCP hands its MAC, and only it
    std::string mac;
  };
  std::vector<Nic> nics;              // from its last launch
  std::string fleet;                  // the fleet it belongs to, if any
  std::optional<DeathReason> reason;  // once dead
  std::string detail;                 // once dead: how it ended
  std::uint32_t restarts = 0;         // by its fleet (or its daemon, for a VM taken over)
  // What tells it ready: "console" (a line it prints) or "vsock" (its callback); empty when it has
  // no ready condition, and running is as ready as it gets.
  std::string ready_on;
};

// A VM's info as the VM last told its service, which it does on every change: what a list of
// thousands shows without asking each VM. Its uptime moves on by itself: from `started` while
// the VMM runs, else as `info` says.
struct VmSnapshot {
  VmInfo info;
  std::optional<std::chrono::steady_clock::time_point> started;

  std::int64_t uptime_ms(std::chrono::steady_clock::time_point now) const {
    if (!started)
      return info.uptime_ms;
    return std::chrono::duration_cast<std::chrono::milliseconds>(now - *started).count();
  }
};

// What a VM's VMM has used so far (vm stats, the metrics endpoint): from its cgroup where it has
// one, else from /proc; what neither counts is missing. Nothing while no VMM runs.
struct VmUsage {
  std::optional<std::uint64_t> cpu_usec;      // user and system time
  std::optional<std::uint64_t> rss_bytes;     // the VMM's resident memory (/proc)
  std::optional<std::uint64_t> memory_bytes;  // its cgroup's charge (page cache included)
  std::optional<std::uint64_t> read_bytes;    // block I/O the VMM caused (/proc/PID/io)
  std::optional<std::uint64_t> write_bytes;
  std::optional<std::uint64_t> tasks;  // its processes and threads
  std::optional<std::uint64_t> memory_limit_bytes;
  bool cgroup = false;  // counted by a cgroup of its own
};

struct VmStats {
  VmInfo info;
  VmUsage usage;
};

// What the service tells those who watch every VM (ServiceActor's watch_atom): each VM's state
// changes, and a fleet's restart of one, with when and whose.
struct SupervisorEvent {
  std::int64_t at_ms = 0;  // Unix time
  std::optional<std::uint32_t> owner;
  std::string fleet;  // the VM's fleet, if any
  // "created" ... "dead" (the VM's states), or "restarted" (by its fleet: detail says how often)
  std::string kind;
  VmEvent event;
};

}  // namespace crosvisor
