// The one I/O thread of a supervisor. It starts VMM children (so that PR_SET_PDEATHSIG ties them
// to a thread that lives as long as the supervisor), watches their pidfds and pipes, reaps them,
// talks QMP and watches signals. Actors never block: they hand work here and hear back through
// the callbacks, which run on this thread and must only post messages.
#pragma once

#include <chrono>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/unique_fd.hpp"
#include "crosvisor/error.hpp"
#include "process/exit_status.hpp"
#include "process/proc_identity.hpp"
#include "vmm/vmm_control.hpp"
#include "vmm/vmm_launch.hpp"

namespace crosvisor::vmm {

struct ChildObserver {
  // The VMM process exists (it can be signalled from now on)...
  std::function<void(pid_t)> spawned;
  // ...and has started its VM: QEMU answered on QMP (it has parsed its command line and built the
  // machine); crosvm, which has no such handshake, at once.
  std::function<void()> started;
  std::function<void(Error)> launch_failed;
  // The console's whole lines, as many as one read brought, each ending in '\n' (as they came:
  // carriage returns kept; crosvisor::for_each_line walks them). A line longer than
  // kConsoleMaxLine is cut there, so a guest cannot make the supervisor buffer without bound.
  std::function<void(std::string)> console_text;
  // The console's bytes as they come, prompts without a newline included: only while raw
  // forwarding is on (Reactor::console_raw), for interactive consoles.
  std::function<void(std::string)> console_bytes;
  std::function<void(std::string)> vmm_output_line;
  // The VMM reported how its guest is ending (QEMU's QMP events); before `exited`.
  std::function<void(lifecycle::GuestNotice)> guest_notice;
  // A console kept in a log (debug = full): its last lines (lifecycle::ConsoleTail), once the
  // child was reaped, right before `exited`. Unset: not called.
  std::function<void(std::vector<std::string>)> console_kept;
  // Called once, after the child was reaped and every byte it wrote was delivered.
  std::function<void(process::ExitStatus)> exited;
  // A durable VMM (one that outlives the supervisor) was started: what tells it apart from any
  // other process later (its record, for the supervisor's successor). After `spawned`.
  std::function<void(process::ProcessIdentity)> identified;
  // A VMM to take over is gone, or the process with its pid is another one now: instead of
  // `spawned`, and nothing follows.
  std::function<void(Error)> lost;
};

// A VMM that an earlier supervisor started and left running (live restore), to be taken over.
struct Takeover {
  process::ProcessIdentity identity;  // checked before anything is touched: never a pid alone
  ControlChannel control;
  std::filesystem::path run_dir;  // its console FIFOs (vmm_launch.hpp, open_durable_console)
  bool console = true;  // a child that is not a VMM (dnsmasq) has only its output FIFO, vmm.out
  bool console_input = false;         // debug = full: the supervisor writes what the guest reads
  std::filesystem::path console_log;  // empty: the console is not kept
  std::uint64_t console_log_max_bytes = 16ull << 20;
  std::optional<uid_t> owner;
  std::string vm;
  std::optional<process::VmCgroup> cgroup;  // the one it was started in, if any
};

class Reactor {
 public:
  using ChildId = std::uint64_t;

  // `spawner`: a program that serves as a VMM spawner (process/spawner.hpp; crosvisord's own,
  // /proc/self/exe), started on the first launch, so that starting a VMM costs the same however
  // many are running. Empty: children are started by this process.
  explicit Reactor(std::filesystem::path spawner = {});
  // SIGKILLs and reaps every child still alive but durable ones (those outlive the supervisor:
  // they are let go), then joins the thread.
  ~Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  // Runs `prepare` and starts the child it describes, on the reactor thread.
  ChildId launch(std::function<Expected<VmmLaunch>()> prepare, ChildObserver observer);
  // Takes over a running VMM that is not this process's child: watched, read, controlled and
  // stopped as a launched one; its exit status cannot be learnt (ExitStatus::unobserved), only
  // what it said before it ended. `observer.lost` when it is not there any more.
  ChildId adopt(Takeover takeover, ChildObserver observer);
  // Lets a durable child go: the supervisor's ends of its channels are closed and it runs on,
  // unwatched, for a successor to take over. Nothing more is heard of it.
  void release(ChildId child);
  // Signals a live child (whole_group: its process group). Ignored once the child is reaped.
  void signal(ChildId child, int signo, bool whole_group);
  // A request over the child's control channel (QMP or crosvm's socket); `done` runs on the
  // reactor thread, with an error when the VMM cannot be asked or did not answer in time.
  void control(ChildId child, ControlRequest request, std::function<void(Expected<void>)> done);
  // Writes the guest's memory into a new dump file (dump_files.hpp) and calls `done` with its
  // path once written, or with why not: crosvm cannot, a dump that fails leaves no file. Dumps
  // take a while (the guest's RAM is written out); kDumpTimeout bounds them.
  struct DumpPlace {
    std::filesystem::path dir;
    std::string vm;
    std::optional<uid_t> owner;
    std::size_t keep = 3;
  };
  static constexpr std::chrono::seconds kDumpTimeout{600};
  void dump_memory(ChildId child, DumpPlace place,
                   std::function<void(Expected<std::filesystem::path>)> done);
  // The same into a file the client opened (vm dump NAME FILE).
  void dump_memory(ChildId child, UniqueFd file, std::function<void(Expected<void>)> done);
  // Calls `ready` (on the reactor thread) when the guest with `cid` connects to host vsock port
  // `port`, or with an error when the host cannot listen there. Returns a token for cancel.
  std::uint64_t await_vsock_ready(std::uint32_t port, std::uint32_t cid,
                                  std::function<void(Expected<void>)> ready);
  void cancel_vsock_ready(std::uint64_t token);
  // Delivers these signals (already blocked by the caller in every thread) to `on_signal`.
  void watch_signals(const sigset_t& signals, std::function<void(int)> on_signal);
  // Runs `job` on the reactor thread.
  void post(std::function<void()> job);

  // Console flow control. A child's console is read only while fewer than kConsoleInFlight of
  // its bytes are delivered and not yet consumed: a supervisor that falls behind a chatty guest
  // makes the guest wait on its serial port, as a slow UART would, instead of queueing without
  // bound (16 guests at 600 KB/s under a slowed daemon grew it by 40 MB/s, and every question
  // to their VMs waited behind the queue). One block of lines is delivered at a time: the
  // observer says when it has consumed one (with its size), and what came meanwhile follows as
  // the next block.
  static constexpr std::size_t kConsoleInFlight = 256 * 1024;
  static constexpr std::size_t kConsoleMaxLine = 4096;
  void console_consumed(ChildId child, std::size_t bytes);
  // Whether the observer gets the console's lines (console_text); on at first. Off, a console
  // costs what copying it to its log does, and nothing else: no message, no wake-up of the
  // observer (a chatty guest nobody watches costs the supervisor what `cat` would).
  void console_lines(ChildId child, bool wanted);
  // The last `count` lines (all kept when 0) of a console kept in a log, on the reactor thread;
  // nothing when the child is gone (console_kept had them) or keeps no log.
  void console_tail(ChildId child, std::size_t count,
                    std::function<void(std::optional<std::vector<std::string>>)> done);
  // Interactive consoles (debug = full VMs). While raw forwarding is on, the console's bytes also
  // go to the observer's console_bytes as they arrive.
  void console_raw(ChildId child, bool on);
  // Writes `bytes` to what the guest reads on its console, after what came before; at most
  // kConsoleInputBacklog bytes wait (a paste larger than that loses its end, said in the log).
  static constexpr std::size_t kConsoleInputBacklog = 1 << 20;
  void console_input(ChildId child, std::string bytes);
  // Children started and not yet reaped (for tests and `vm list`).
  std::size_t live_children() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace crosvisor::vmm
