#include "vmm/reactor.hpp"

#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <sys/wait.h>

#include <array>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <cstring>
#include <deque>
#include <map>
#include <span>
#include <thread>
#include <unordered_map>

#include "crosvisor/vm_event.hpp"
#include "lifecycle/console_tail.hpp"
#include "process/pidfd.hpp"
#include "process/spawner.hpp"
#include "vmm/crosvm/crosvm_control.hpp"
#include "vmm/dump_files.hpp"
#include "vmm/qemu/qmp_session.hpp"
#include "vsock/ready_listener.hpp"

namespace crosvisor::vmm {
namespace asio = boost::asio;
using stream = asio::posix::stream_descriptor;

namespace {

// One output channel of a child (console or VMM output): every byte goes to the console log (if
// kept) as it comes, and to `deliver` as whole lines, a read's worth at a time.
struct LineChannel {
  explicit LineChannel(asio::io_context& io) : descriptor(io) {}
  stream descriptor;
  std::string partial;  // the start of a line whose end has not come yet
  std::function<void(std::string)> deliver;
  std::function<void(std::string)> raw;  // every byte as it comes, while raw_on
  bool raw_on = false;
  std::optional<ConsoleLog> copy;  // gets every byte as it comes (the console log), if any
  bool flow_controlled = false;    // the console: see Reactor::kConsoleInFlight
  std::size_t in_flight = 0;       // bytes delivered and not yet consumed, or waiting to be
  bool paused = false;             // not read until enough is consumed
  // The console's lines are delivered one block at a time: what comes while a block is not yet
  // consumed waits here and goes as the next block, whole. A busy consumer gets fewer, larger
  // blocks (each block is a message and a wake-up: per read, they cost more than the bytes).
  bool delivered_unconsumed = false;
  std::string waiting;
  bool lines_wanted = true;                    // see Reactor::console_lines
  std::optional<lifecycle::ConsoleTail> tail;  // a console kept in a log: its last lines

  // Read without waiting: the reactor waits for readiness and reads itself, into its one buffer
  // (a buffer per channel would be 8 KiB of every VM's memory, idle or not).
  void assign(int fd) {
    descriptor.assign(fd);
    boost::system::error_code ignored;
    descriptor.non_blocking(true, ignored);
  }

  void feed(std::string_view data) {
    if (copy)
      copy->write(data);
    if (raw_on && raw)
      raw(std::string(data));
    // Found from the end (memrchr scans a word at a time): a chatty guest's block is not looked
    // at byte by byte here; its lines are, only by those who need them.
    const auto* newline = static_cast<const char*>(::memrchr(data.data(), '\n', data.size()));
    if (newline == nullptr) {
      partial.append(data);
      if (partial.size() >= Reactor::kConsoleMaxLine)
        flush_partial();
      return;
    }
    const std::size_t whole = static_cast<std::size_t>(newline - data.data()) + 1;
    if (partial.empty()) {
      take_lines(data.substr(0, whole));
    } else {
      partial.append(data.substr(0, whole));
      take_lines(partial);
    }
    partial.assign(data.substr(whole));
  }
  void flush_partial() {
    if (partial.empty())
      return;
    partial.push_back('\n');
    take_lines(partial);
    partial.clear();
  }
  void take_lines(std::string_view lines) {
    if (tail)
      tail->add_lines(lines);
    if (lines_wanted)
      send(std::string(lines));
  }
  void want_lines(bool wanted) {
    lines_wanted = wanted;
    if (!wanted) {  // what waits is nobody's any more
      in_flight -= std::min(in_flight, waiting.size());
      waiting.clear();
    }
  }
  void send(std::string lines) {
    if (!flow_controlled)
      return deliver(std::move(lines));
    in_flight += lines.size();
    if (delivered_unconsumed) {
      waiting.append(lines);
      return;
    }
    delivered_unconsumed = true;
    deliver(std::move(lines));
  }
  // The block delivered was consumed: the next one goes, if anything waits.
  void next_block() {
    delivered_unconsumed = false;
    if (!waiting.empty()) {
      delivered_unconsumed = true;
      deliver(std::exchange(waiting, {}));
    }
  }
  bool over_limit() const { return flow_controlled && in_flight >= Reactor::kConsoleInFlight; }
  // Reads whatever is buffered in the pipe right now, without waiting, then closes.
  void drain(std::span<char> buffer) {
    if (!descriptor.is_open())
      return;
    ssize_t n;
    while ((n = ::read(descriptor.native_handle(), buffer.data(), buffer.size())) > 0 ||
           (n < 0 && errno == EINTR)) {
      if (n > 0)
        feed(std::string_view(buffer.data(), static_cast<std::size_t>(n)));
    }
    flush_partial();
    if (!waiting.empty())  // the last words go now, consumed or not: the exit status follows
      deliver(std::exchange(waiting, {}));
    boost::system::error_code ignored;
    descriptor.close(ignored);
  }
};

// What the guest reads on its console (debug = full VMs): bytes written in order, bounded.
struct ConsoleInput {
  explicit ConsoleInput(asio::io_context& io) : descriptor(io) {}
  stream descriptor;
  std::deque<std::string> queue;
  std::size_t queued = 0;  // bytes in `queue`
  bool writing = false;
};

struct Child {
  explicit Child(asio::io_context& io)
      : exit_watch(io), console(io), output(io), console_input(io) {}
  Reactor::ChildId id = 0;
  pid_t pid = -1;
  bool reaped = false;
  // Its exit was seen: reads in flight are being cancelled (their data, if they got any, still
  // delivered), then the exit path drains what is left, so no read races the drain.
  bool finishing = false;
  bool durable = false;  // outlives the supervisor: let go at shutdown, never killed
  bool adopted = false;  // not our child: its exit status cannot be learnt
  stream exit_watch;     // the pidfd
  LineChannel console;
  LineChannel output;
  ConsoleInput console_input;
  ControlChannel control;
  std::shared_ptr<QmpSession> qmp;  // QEMU: the session that carries commands and events
  std::optional<process::VmCgroup> cgroup;
  ChildObserver observer;
};

process::ExitStatus to_exit_status(const siginfo_t& info) {
  if (info.si_code == CLD_EXITED)
    return process::ExitStatus::exited(info.si_status);
  return process::ExitStatus::killed_by(info.si_status);
}

}  // namespace

struct Reactor::Impl {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::atomic<ChildId> next_id{1};
  std::atomic<std::size_t> live{0};
  std::unordered_map<ChildId, std::shared_ptr<Child>> children;  // reactor thread only
  std::unique_ptr<stream> signal_watch;
  vsock::ReadyListener vsock_ready{io};
  std::atomic<std::uint64_t> next_ready_token{1};
  std::function<void(int)> on_signal;
  // What every channel's read lands in (reactor thread only): one pipe's full capacity.
  std::array<char, 64 * 1024> read_buffer{};
  std::filesystem::path spawner_program;    // empty: no spawner
  std::optional<process::Spawner> spawner;  // reactor thread only
  std::unique_ptr<stream> spawner_watch;    // its pidfd: reaped when it ends between launches
  std::uint64_t spawner_generation = 0;     // which spawner a wait on spawner_watch was for
  std::thread thread;

  explicit Impl(std::filesystem::path program) : spawner_program(std::move(program)) {
    // asio creates its epoll, eventfd and timerfd on first use; create them now, so that the
    // supervisor's fd count is the same before its first VM and after its last.
    asio::steady_timer warm_up(io);
    thread = std::thread([this] { io.run(); });
  }

  void consumed(ChildId id, std::size_t bytes) {
    auto found = children.find(id);
    if (found == children.end())
      return;
    auto& console = found->second->console;
    console.in_flight -= std::min(bytes, console.in_flight);
    console.next_block();
    resume_console(found->second);
  }

  // A paused console is read again once at most half the limit is in flight, so that a consumer
  // acknowledging in batches keeps the pipe busy.
  void resume_console(const std::shared_ptr<Child>& child) {
    auto& console = child->console;
    if (console.paused && console.in_flight <= kConsoleInFlight / 2 && !child->reaped &&
        !child->finishing) {
      console.paused = false;
      read_channel(child, console);
    }
  }

  // One read per readiness: a chatty guest gets its turn and waits for the others' (each read
  // takes up to a pipe's worth).
  void read_channel(const std::shared_ptr<Child>& child, LineChannel& channel) {
    channel.descriptor.async_wait(
        stream::wait_read, [this, child, &channel](boost::system::error_code ec) {
          if (ec || child->reaped || child->finishing)
            return;  // cancelled by the exit path, which drains what is left, or drained by it
          const ssize_t n =
              ::read(channel.descriptor.native_handle(), read_buffer.data(), read_buffer.size());
          if (n == 0)
            return;  // end of file: the exit path closes it
          if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
              read_channel(child, channel);
            return;
          }
          channel.feed(std::string_view(read_buffer.data(), static_cast<std::size_t>(n)));
          if (channel.over_limit()) {
            channel.paused = true;  // resumed by console_consumed
            return;
          }
          read_channel(child, channel);
        });
  }

  void start(ChildId id, const std::function<Expected<VmmLaunch>()>& prepare,
             ChildObserver observer) {
    auto launch = prepare();
    if (!launch)
      return observer.launch_failed(launch.error());
    auto spawned = spawn(launch->request);
    if (!spawned) {
      if (launch->cgroup)
        (void)launch->cgroup->remove();
      return observer.launch_failed(spawned.error());
    }
    // Our copies of the child's fds (the pipes' write ends above all) must close now, or the
    // console pipe would never report end-of-file.
    launch->request.fds = process::FdPlan();
    const bool durable = !launch->request.die_with_supervisor;
    std::optional<process::ProcessIdentity> identity;
    if (durable && observer.identified) {
      // The arguments it was given, not /proc's: right after exec the kernel may not have set
      // the new command line yet. Its start time is its fork's, which exec does not change.
      if (auto started = process::process_start_time(spawned->pid))
        identity = process::ProcessIdentity{spawned->pid, *started, launch->request.args};
    }
    auto child =
        watch(id, spawned->pid, std::move(spawned->pidfd), std::move(*launch), std::move(observer));
    child->durable = durable;
    if (identity)
      child->observer.identified(std::move(*identity));
    begin(child);
  }

  static Expected<DurableConsole> open_takeover_console(const Takeover& takeover) {
    if (takeover.console)
      return open_durable_console(takeover.run_dir, false);
    auto output = open_durable_output(takeover.run_dir, false);
    if (!output)
      return std::unexpected(output.error());
    DurableConsole only_output;
    only_output.vmm_output = std::move(*output);
    return only_output;
  }

  void take_over(ChildId id, Takeover takeover, ChildObserver observer) {
    auto pidfd = process::open_same_process(takeover.identity);
    if (!pidfd)
      return observer.lost(pidfd.error());
    auto console = open_takeover_console(takeover);
    if (!console) {
      // It runs, but cannot be reached (its directory is gone): ended, rather than left running
      // unsupervised while its fleet starts it again.
      pidfd_send_signal(pidfd->get(), SIGKILL, nullptr, 0);
      return observer.lost(Error{ErrorKind::io, console.error().message + ": its VMM (pid " +
                                                    std::to_string(takeover.identity.pid) +
                                                    ") was killed"});
    }
    VmmLaunch launch;
    launch.console = std::move(console->out);
    if (takeover.console_input)
      launch.console_input = std::move(console->in);
    launch.vmm_output = std::move(console->vmm_output);
    launch.control = takeover.control;
    launch.cgroup = std::move(takeover.cgroup);
    if (!takeover.console_log.empty()) {
      auto log = ConsoleLog::open(takeover.console_log, takeover.console_log_max_bytes,
                                  takeover.owner, takeover_marker(takeover.vm));
      if (log)
        launch.console_log.emplace(std::move(*log));
    }
    auto child =
        watch(id, takeover.identity.pid, std::move(*pidfd), std::move(launch), std::move(observer));
    child->durable = true;
    child->adopted = true;
    begin(child);
  }

  // A child in the table, its channels assigned; nothing read yet.
  std::shared_ptr<Child> watch(ChildId id, pid_t pid, UniqueFd pidfd, VmmLaunch launch,
                               ChildObserver observer) {
    auto child = std::make_shared<Child>(io);
    child->id = id;
    child->pid = pid;
    child->observer = std::move(observer);
    child->exit_watch.assign(pidfd.release());
    if (launch.console)  // a child that is not a VMM (dnsmasq) has none
      child->console.assign(launch.console.release());
    child->console.deliver = child->observer.console_text;
    child->console.raw = child->observer.console_bytes;
    child->console.flow_controlled = true;
    if (launch.console_input)
      child->console_input.descriptor.assign(launch.console_input.release());
    if (launch.vmm_output)  // a child that is not a VMM may have none
      child->output.assign(launch.vmm_output.release());
    child->output.deliver = [each = child->observer.vmm_output_line](std::string lines) {
      for_each_line(lines, [&](std::string_view line) { each(std::string(line)); });
    };
    if (launch.console_log)
      child->console.tail.emplace();
    child->console.copy = std::move(launch.console_log);
    child->control = launch.control;
    child->cgroup = std::move(launch.cgroup);
    children.emplace(id, child);
    live.fetch_add(1);
    return child;
  }

  // Tells the observer the child exists, opens its control channel and starts reading.
  void begin(const std::shared_ptr<Child>& child) {
    child->observer.spawned(child->pid);
    if (child->control.protocol == ControlProtocol::qmp) {
      // Weak: the session lives in the child, and must not keep it alive.
      std::weak_ptr<Child> weak = child;
      child->qmp = std::make_shared<QmpSession>(io, child->observer.guest_notice, [weak] {
        if (auto alive = weak.lock(); alive && !alive->reaped)
          alive->observer.started();
      });
      child->qmp->open(child->control.socket);
    } else {
      child->observer.started();
    }

    if (child->console.descriptor.is_open())
      read_channel(child, child->console);
    if (child->output.descriptor.is_open())
      read_channel(child, child->output);
    child->exit_watch.async_wait(stream::wait_read, [this, child](boost::system::error_code ec) {
      if (ec)
        return;
      // Waits for more output are cancelled, then the reap drains the pipes, behind whatever is
      // queued, so that every word the VMM said arrives before its exit status.
      child->finishing = true;
      boost::system::error_code ignored;
      child->console.descriptor.cancel(ignored);
      child->output.descriptor.cancel(ignored);
      asio::post(io, [this, child] { reap(child); });
    });
  }

  // By value: the caller's pointer may be the table's own entry, which the reap erases.
  void reap(std::shared_ptr<Child> child) {
    siginfo_t info{};
    int waited;
    while ((waited = waitid(P_PIDFD, child->exit_watch.native_handle(), &info, WEXITED)) != 0 &&
           errno == EINTR) {
    }
    if (child->reaped)
      return;
    // A child taken over is someone else's to reap (ECHILD): it ended, how is not ours to know.
    process::ExitStatus status =
        waited == 0 ? to_exit_status(info) : process::ExitStatus::unobserved();
    child->reaped = true;
    if (child->cgroup) {
      // A SIGKILL the cgroup counted as an OOM kill is the kernel's, at its memory limit.
      status.oom_killed = status.signaled && status.value == SIGKILL &&
                          child->cgroup->usage().oom_kills.value_or(0) > 0;
      child->cgroup->kill_all();  // anything the VMM left behind in it
      if (auto removed = child->cgroup->remove(); !removed)
        spdlog::warn("{}", removed.error().message);
    }
    child->console.drain(read_buffer);
    child->output.drain(read_buffer);
    if (child->console_input.descriptor.is_open()) {
      boost::system::error_code closed;
      child->console_input.descriptor.close(closed);
    }
    if (child->qmp) {
      child->qmp->finish();
      child->qmp.reset();
    }
    boost::system::error_code ignored;
    child->exit_watch.close(ignored);
    children.erase(child->id);
    live.fetch_sub(1);
    if (child->console.tail && child->observer.console_kept)
      child->observer.console_kept(child->console.tail->last());
    auto exited = std::move(child->observer.exited);
    child->observer = {};
    exited(status);
  }

  // A durable child is let go: our ends close, it runs on.
  void let_go(ChildId id) {
    auto it = children.find(id);
    if (it == children.end() || it->second->reaped)
      return;
    auto child = it->second;
    child->reaped = true;  // as far as this supervisor is concerned
    boost::system::error_code ignored;
    child->console.descriptor.close(ignored);
    child->output.descriptor.close(ignored);
    child->console_input.descriptor.close(ignored);
    if (child->qmp) {
      child->qmp->finish();
      child->qmp.reset();
    }
    child->exit_watch.close(ignored);
    child->observer = {};
    children.erase(it);
    live.fetch_sub(1);
  }

  void want_console_lines(ChildId id, bool wanted) {
    auto it = children.find(id);
    if (it == children.end())
      return;
    it->second->console.want_lines(wanted);
    resume_console(it->second);
  }

  std::optional<std::vector<std::string>> tail_of(ChildId id, std::size_t count) const {
    auto it = children.find(id);
    if (it == children.end() || !it->second->console.tail)
      return std::nullopt;
    return it->second->console.tail->last(count);
  }

  void set_console_raw(ChildId id, bool on) {
    if (auto it = children.find(id); it != children.end())
      it->second->console.raw_on = on;
  }

  void queue_console_input(ChildId id, std::string bytes) {
    auto it = children.find(id);
    if (it == children.end() || it->second->reaped)
      return;
    auto& input = it->second->console_input;
    if (!input.descriptor.is_open())
      return;
    if (input.queued + bytes.size() > kConsoleInputBacklog)
      bytes.resize(kConsoleInputBacklog - std::min(kConsoleInputBacklog, input.queued));
    if (bytes.empty())
      return;
    input.queued += bytes.size();
    input.queue.push_back(std::move(bytes));
    if (!input.writing)
      write_console_input(it->second);
  }

  void write_console_input(const std::shared_ptr<Child>& child) {
    auto& input = child->console_input;
    if (input.queue.empty() || child->reaped) {
      input.writing = false;
      return;
    }
    input.writing = true;
    asio::async_write(input.descriptor, asio::buffer(input.queue.front()),
                      [this, child](boost::system::error_code ec, std::size_t) {
                        auto& in = child->console_input;
                        if (ec) {  // the VMM stopped reading: it is going away
                          in.queue.clear();
                          in.queued = 0;
                          in.writing = false;
                          return;
                        }
                        in.queued -= in.queue.front().size();
                        in.queue.pop_front();
                        write_console_input(child);
                      });
  }

  void send_signal(ChildId id, int signo, bool whole_group) {
    auto it = children.find(id);
    if (it == children.end() || it->second->reaped)
      return;
    // The child is not reaped yet, so neither its pid nor its process group can have been reused.
    // A child taken over is reaped by someone else, at any moment: only its pidfd is sure.
    if (whole_group && signo == SIGKILL && it->second->cgroup) {
      // The last stop step: everything in its cgroup, wherever it went.
      it->second->cgroup->kill_all();
      pidfd_send_signal(it->second->exit_watch.native_handle(), signo, nullptr, 0);
    } else if (whole_group && !it->second->adopted) {
      ::kill(-it->second->pid, signo);
    } else {
      pidfd_send_signal(it->second->exit_watch.native_handle(), signo, nullptr, 0);
    }
  }

  void send_control(ChildId id, ControlRequest request, std::function<void(Expected<void>)> done) {
    constexpr auto kAnswerTimeout = std::chrono::seconds(5);
    auto it = children.find(id);
    if (it == children.end() || it->second->reaped)
      return done(make_error(ErrorKind::io, "the VMM has exited"));
    Child& child = *it->second;
    switch (child.control.protocol) {
      case ControlProtocol::qmp:
        return child.qmp->execute(request, kAnswerTimeout, std::move(done));
      case ControlProtocol::none:
        return done(make_error(ErrorKind::state, "this child has no control channel"));
      case ControlProtocol::crosvm:
        return crosvm::execute(io, child.control.socket, request, kAnswerTimeout, std::move(done));
    }
  }

  void dump(ChildId id, UniqueFd file, std::function<void(Expected<void>)> done) {
    auto it = children.find(id);
    if (it == children.end() || it->second->reaped)
      return done(make_error(ErrorKind::state, "the VMM has exited"));
    if (!it->second->qmp) {
      return done(
          make_error(ErrorKind::state, "crosvm cannot dump a guest's memory (docs/debugging.md)"));
    }
    it->second->qmp->dump_memory(std::move(file), kDumpTimeout, std::move(done));
  }

  void dump_to(ChildId id, const DumpPlace& place,
               std::function<void(Expected<std::filesystem::path>)> done) {
    auto it = children.find(id);
    if (it == children.end() || it->second->reaped)
      return done(make_error(ErrorKind::state, "the VMM has exited"));
    if (!it->second->qmp) {
      return done(
          make_error(ErrorKind::state, "crosvm cannot dump a guest's memory (docs/debugging.md)"));
    }
    auto file = create_dump_file(place.dir, place.vm, place.owner, place.keep,
                                 std::chrono::system_clock::now());
    if (!file)
      return done(std::unexpected(file.error()));
    auto path = file->path;
    dump(id, std::move(file->fd), [path, done](Expected<void> written) {
      if (!written) {
        std::error_code ignored;
        std::filesystem::remove(path, ignored);  // half a dump helps nobody
        return done(std::unexpected(written.error()));
      }
      done(path);
    });
  }

  void read_signals() {
    auto buffer = std::make_shared<signalfd_siginfo>();
    signal_watch->async_read_some(asio::buffer(buffer.get(), sizeof(*buffer)),
                                  [this, buffer](boost::system::error_code ec, std::size_t n) {
                                    if (ec)
                                      return;
                                    if (n == sizeof(*buffer))
                                      on_signal(static_cast<int>(buffer->ssi_signo));
                                    read_signals();
                                  });
  }

  // Through the spawner, started on first use (from this thread: the VMMs' parent for
  // PR_SET_PDEATHSIG), and started again if it ended before it got the launch.
  Expected<process::SpawnedChild> spawn(const process::LaunchRequest& request) {
    if (spawner_program.empty())
      return process::spawn_child(request);
    for (int attempt = 0;; ++attempt) {
      if (!spawner && !start_spawner())
        return process::spawn_child(request);
      auto child = spawner->spawn(request);
      if (child || spawner->alive())
        return child;
      spdlog::warn("the VMM spawner (pid {}) ended: starting another", spawner->pid());
      const bool again = spawner->undelivered() && attempt == 0;
      if (!spawner->undelivered())
        end_strays();
      stop_spawner();
      if (!again)
        return child;
    }
  }

  bool start_spawner() {
    auto started = process::Spawner::start(spawner_program);
    if (!started) {
      spdlog::warn("{}; VMMs are started by this process instead", started.error().message);
      spawner_program.clear();
      return false;
    }
    spawner.emplace(std::move(*started));
    // The spawner's own pidfd, lent to asio (released before the spawner closes it).
    spawner_watch = std::make_unique<stream>(io, spawner->pidfd());
    const std::uint64_t generation = ++spawner_generation;
    spawner_watch->async_wait(stream::wait_read, [this, generation](boost::system::error_code ec) {
      if (!ec && spawner && spawner_generation == generation) {
        spdlog::warn("the VMM spawner (pid {}) ended; another starts with the next VM",
                     spawner->pid());
        stop_spawner();
      }
    });
    return true;
  }

  void stop_spawner() {
    if (spawner_watch)
      spawner_watch->release();  // cancels its wait; the fd is the spawner's
    spawner_watch.reset();
    spawner.reset();  // reaps it
  }

  // A spawner that died between our launch and its answer may have started a child nobody
  // watches (a child of this thread): it is ended, and reaped, rather than left running.
  void end_strays() {
    std::vector<pid_t> known{spawner->pid()};
    for (const auto& [id, child] : children)
      known.push_back(child->pid);
    for (pid_t stray : process::stray_children(known)) {
      spdlog::warn("ending pid {}, started by a spawner that ended before it said so", stray);
      ::kill(stray, SIGKILL);
      process::reap_child(stray);
    }
  }

  // On the reactor thread at shutdown: nothing may outlive the supervisor.
  void kill_all() {
    std::vector<ChildId> durable;
    for (auto& [id, child] : children) {
      if (child->durable)
        durable.push_back(id);
      else if (!child->reaped)
        ::kill(-child->pid, SIGKILL);
    }
    for (ChildId id : durable)
      let_go(id);
    while (!children.empty())
      reap(children.begin()->second);
    stop_spawner();
    signal_watch.reset();
    vsock_ready.close_all();
  }
};

Reactor::Reactor(std::filesystem::path spawner)
    : impl_(std::make_unique<Impl>(std::move(spawner))) {}

Reactor::~Reactor() {
  asio::post(impl_->io, [impl = impl_.get()] {
    impl->kill_all();
    impl->work.reset();
    impl->io.stop();
  });
  impl_->thread.join();
}

Reactor::ChildId Reactor::launch(std::function<Expected<VmmLaunch>()> prepare,
                                 ChildObserver observer) {
  const ChildId id = impl_->next_id.fetch_add(1);
  asio::post(impl_->io, [impl = impl_.get(), id, prepare = std::move(prepare),
                         observer = std::move(observer)]() mutable {
    impl->start(id, prepare, std::move(observer));
  });
  return id;
}

Reactor::ChildId Reactor::adopt(Takeover takeover, ChildObserver observer) {
  const ChildId id = impl_->next_id.fetch_add(1);
  asio::post(impl_->io, [impl = impl_.get(), id, takeover = std::move(takeover),
                         observer = std::move(observer)]() mutable {
    impl->take_over(id, std::move(takeover), std::move(observer));
  });
  return id;
}

void Reactor::release(ChildId child) {
  asio::post(impl_->io, [impl = impl_.get(), child] { impl->let_go(child); });
}

void Reactor::signal(ChildId child, int signo, bool whole_group) {
  asio::post(impl_->io, [impl = impl_.get(), child, signo, whole_group] {
    impl->send_signal(child, signo, whole_group);
  });
}

void Reactor::control(ChildId child, ControlRequest request,
                      std::function<void(Expected<void>)> done) {
  asio::post(impl_->io, [impl = impl_.get(), child, request, done = std::move(done)]() mutable {
    impl->send_control(child, request, std::move(done));
  });
}

void Reactor::watch_signals(const sigset_t& signals, std::function<void(int)> on_signal) {
  const int fd = signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);
  if (fd < 0)
    throw std::system_error(errno, std::system_category(), "signalfd");
  asio::post(impl_->io, [impl = impl_.get(), fd, on_signal = std::move(on_signal)]() mutable {
    impl->on_signal = std::move(on_signal);
    impl->signal_watch = std::make_unique<stream>(impl->io, fd);
    impl->read_signals();
  });
}

std::uint64_t Reactor::await_vsock_ready(std::uint32_t port, std::uint32_t cid,
                                         std::function<void(Expected<void>)> ready) {
  const std::uint64_t token = impl_->next_ready_token.fetch_add(1);
  asio::post(impl_->io, [impl = impl_.get(), token, port, cid, ready = std::move(ready)]() mutable {
    impl->vsock_ready.expect(token, port, cid, std::move(ready));
  });
  return token;
}

void Reactor::cancel_vsock_ready(std::uint64_t token) {
  asio::post(impl_->io, [impl = impl_.get(), token] { impl->vsock_ready.cancel(token); });
}

void Reactor::console_consumed(ChildId child, std::size_t bytes) {
  asio::post(impl_->io, [impl = impl_.get(), child, bytes] { impl->consumed(child, bytes); });
}

void Reactor::console_lines(ChildId child, bool wanted) {
  asio::post(impl_->io,
             [impl = impl_.get(), child, wanted] { impl->want_console_lines(child, wanted); });
}

void Reactor::console_tail(ChildId child, std::size_t count,
                           std::function<void(std::optional<std::vector<std::string>>)> done) {
  asio::post(impl_->io, [impl = impl_.get(), child, count, done = std::move(done)] {
    done(impl->tail_of(child, count));
  });
}

void Reactor::console_raw(ChildId child, bool on) {
  asio::post(impl_->io, [impl = impl_.get(), child, on] { impl->set_console_raw(child, on); });
}

void Reactor::console_input(ChildId child, std::string bytes) {
  asio::post(impl_->io, [impl = impl_.get(), child, bytes = std::move(bytes)]() mutable {
    impl->queue_console_input(child, std::move(bytes));
  });
}

void Reactor::dump_memory(ChildId child, DumpPlace place,
                          std::function<void(Expected<std::filesystem::path>)> done) {
  asio::post(impl_->io,
             [impl = impl_.get(), child, place = std::move(place),
              done = std::move(done)]() mutable { impl->dump_to(child, place, std::move(done)); });
}

void Reactor::dump_memory(ChildId child, UniqueFd file, std::function<void(Expected<void>)> done) {
  // Shared: a posted job must be copyable, a UniqueFd is not.
  auto shared = std::make_shared<UniqueFd>(std::move(file));
  asio::post(impl_->io, [impl = impl_.get(), child, shared, done = std::move(done)]() mutable {
    impl->dump(child, std::move(*shared), std::move(done));
  });
}

void Reactor::post(std::function<void()> job) {
  asio::post(impl_->io, std::move(job));
}

std::size_t Reactor::live_children() const {
  return impl_->live.load();
}

}  // namespace crosvisor::vmm
