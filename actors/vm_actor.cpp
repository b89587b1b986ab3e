#include "actors/vm_actor.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <map>

#include "actors/client_proxy.hpp"
#include "actors/monitors.hpp"
#include "core/debug_policy.hpp"
#include "core/unix_time.hpp"
#include "crosvisor/error_bridge.hpp"
#include "crosvisor/messages.hpp"
#include "process/proc_usage.hpp"
#include "vmm/reactor.hpp"
#include "vmm/vmm_backend.hpp"

namespace crosvisor {
namespace {

struct VmActorState {
  static inline const char* name = "crosvisor.vm";

  std::unique_ptr<lifecycle::VmLifecycle> life;
  std::shared_ptr<vmm::Reactor> reactor;
  VmDeathWatcher watcher;
  std::vector<NetworkActor> networks;  // one per interface; held: a network lives while its VMs do
  std::vector<NicLease> leases;        // what each gave for the current launch
  vmm::Reactor::ChildId child = 0;
  bool child_alive = false;
  pid_t pid = -1;
  std::filesystem::path run_dir;
  std::uint32_t cid = 0;
  std::uint64_t ready_token = 0;  // a pending vsock readiness wait, if any
  struct Subscriber {
    caf::actor actor;
    bool console = true;  // also the console lines, not only VmEvents
  };
  std::vector<Subscriber> subscribers;
  std::vector<caf::actor> console_clients;  // attached to the interactive console
  caf::actor console_writer;                // whose input reaches the guest, if anyone's
  // The client handles (never strong references), and whether each one's client takes console
  // lines (not a fleet's, which watches states; not a handle without a client).
  std::map<caf::actor_addr, bool> proxies;
  std::optional<std::chrono::steady_clock::time_point> started_at;
  std::optional<std::int64_t> started_at_unix_ms;
  std::optional<std::int64_t> ended_at_unix_ms;
  std::optional<lifecycle::Death> death;
  bool kill_requested = false;
  bool dead = false;
  std::filesystem::path console_log;  // debug = full: the console's file
  std::filesystem::path nvram;        // QEMU UEFI boots: its own variable store
  std::uint64_t console_log_max_bytes = 0;
  bool console_kept = false;  // debug = full: its console is logged, its last lines kept
  // Whether the reactor delivers the console's lines (Reactor::console_lines): only while
  // someone looks at them.
  bool lines_wanted = true;
  std::vector<std::string> kept_lines;  // what the reactor kept of the console, once ended
  std::uint64_t next_tail = 1;
  std::map<std::uint64_t,
           std::pair<std::uint32_t, caf::typed_response_promise<std::vector<std::string>>>>
      tail_waiters;               // `vm logs` asked while the VMM ran: (lines, promise) by token
  vmm::Reactor::DumpPlace dumps;  // debug = full: where its memory dumps go
  bool dumping_panic = false;     // a panicked guest's dump is being written
  std::string last_dump;
  std::uint64_t next_dump = 1;
  std::uint64_t next_stats = 1;
  std::map<std::uint64_t, caf::typed_response_promise<VmStats>> stats_waiters;
  std::map<std::uint64_t, caf::typed_response_promise<std::string>> dump_waiters;

  caf::actor_addr self_address;  // to withdraw its monitors on the subscribers as it ends

  // Live restore: the VMM outlives the supervisor (vm_actor.hpp, VmPaths::Durable).
  std::optional<VmPaths::Durable> durable;
  std::optional<vmm::Confinement> confine;  // how its VMM is confined, if it is
  std::shared_ptr<const process::CgroupHost> cgroups;
  std::string cgroups_unavailable;
  std::uint32_t restarts = 0;                        // by its fleet, before this start
  std::shared_ptr<const UniqueFd> cid_reservation;   // the VMM's copy of it
  std::optional<process::ProcessIdentity> identity;  // of the VMM, once known
  bool released = false;                             // let go: it runs on, unwatched
  // A let-go asked for while the VMM's identity is not known yet: answered once its record is
  // written (a VMM let go without a record could never be taken over).
  std::optional<caf::typed_response_promise<bool>> let_go_waiter;

  ~VmActorState() {
    // An actor that ends while its child lives (its system is shutting down) takes the child with
    // it, unless the child is meant to outlive the supervisor.
    if (durable)
      return;
    if (child_alive && reactor)
      reactor->signal(child, SIGKILL, true);
    for (const auto& subscriber : subscribers)
      withdraw_monitor(self_address, subscriber.actor);
    for (const auto& client : console_clients)
      withdraw_monitor(self_address, client);
    std::error_code ignored;
    if (!run_dir.empty())
      std::filesystem::remove_all(run_dir, ignored);
  }
};

using VmSelf = VmActorImpl::stateful_pointer<VmActorState>;

// One line per disk, as the client named its files: "raw /srv/root.img (rw)",
// "composite: boot /srv/boot.img (ro), data /srv/data.img (rw)".
std::vector<std::string> describe_disks(const VmSpec& spec) {
  std::vector<std::string> disks;
  for (const auto& disk : spec.disks) {
    if (const auto* raw = std::get_if<RawDisk>(&disk)) {
      disks.push_back("raw " + spec.shown(raw->path) + (raw->writable ? " (rw)" : " (ro)"));
      continue;
    }
    std::string text = "composite:";
    const char* separator = " ";
    for (const auto& part : std::get<CompositeDisk>(disk).partitions) {
      text += separator + part.label + " " + spec.shown(part.path) +
              (part.writable ? " (rw)" : " (ro)");
      separator = ", ";
    }
    disks.push_back(std::move(text));
  }
  return disks;
}

void tell_info(VmSelf self);

// To every subscriber and every client handle.
template <class Message>
void tell_clients(VmSelf self, const Message& message) {
  constexpr bool console = std::is_same_v<Message, ConsoleText>;
  for (auto& subscriber : self->state.subscribers) {
    if (!console || subscriber.console)
      caf::anon_send(subscriber.actor, message);
  }
  for (const auto& [address, takes_console] : self->state.proxies) {
    if (!console || takes_console) {
      if (auto proxy = caf::actor_cast<ClientProxyActor>(address))
        self->send(proxy, message);
    }
  }
}

// To the clients; a state change to the service first (what it lists and records), so that a
// client that heard of it and asks the service finds it known there already.
template <class Message>
void publish(VmSelf self, const Message& message) {
  if constexpr (std::is_same_v<Message, VmEvent>) {
    tell_info(self);
    self->send(self->state.watcher, vm_state_atom::value, self->address(), message);
  }
  tell_clients(self, message);
}

// The last `count` of `lines` (all when 0).
std::vector<std::string> last_of(const std::vector<std::string>& lines, std::uint32_t count) {
  if (count == 0 || count >= lines.size())
    return lines;
  return std::vector<std::string>(lines.end() - count, lines.end());
}

// The VM actor lives on after its VM died, answering requests, until no handle remains: only
// then does the CID registry (which monitors it) take the CID back, as AVF does.
void quit_if_unreferenced(VmSelf self) {
  if (self->state.dead && self->state.proxies.empty())
    self->quit();
}

VmEvent current_event(VmSelf self, std::string detail = {}) {
  VmEvent event;
  event.vm = self->state.life->spec().name;
  event.state = self->state.life->state();
  event.detail = std::move(detail);
  return event;
}

// The reactor delivers the console's lines only while they are looked at: until the guest has
// spoken (a death's facts) and the VM is ready by its console, and while a subscriber or a
// handle's client follows them. Otherwise a chatty guest costs the copy to its log alone.
void update_console_lines(VmSelf self) {
  auto& st = self->state;
  const bool followed =
      std::any_of(st.subscribers.begin(), st.subscribers.end(),
                  [](const VmActorState::Subscriber& subscriber) { return subscriber.console; }) ||
      std::any_of(st.proxies.begin(), st.proxies.end(),
                  [](const auto& proxy) { return proxy.second; });
  const bool wanted = !st.life->console_seen() || st.life->awaits_console_ready() || followed;
  if (!st.child_alive || wanted == st.lines_wanted)
    return;
  st.lines_wanted = wanted;
  st.reactor->console_lines(st.child, wanted);
}

// Adds a subscriber (once; a second subscription changes what it wants) and tells it the
// current state.
void subscribe(VmSelf self, caf::actor subscriber, bool console) {
  auto& subscribers = self->state.subscribers;
  caf::anon_send(subscriber, current_event(self));
  auto known = std::find_if(subscribers.begin(), subscribers.end(),
                            [&](const auto& entry) { return entry.actor == subscriber; });
  if (known != subscribers.end()) {
    known->console = console;
  } else {
    self->monitor(subscriber);  // forgotten when it goes down
    subscribers.push_back({std::move(subscriber), console});
  }
  update_console_lines(self);
}

// The reactor forwards the console's raw bytes while anyone is attached to it.
void update_console_raw(VmSelf self) {
  auto& st = self->state;
  if (st.child_alive)
    st.reactor->console_raw(st.child, !st.console_clients.empty());
}

void detach_console(VmSelf self, const caf::actor_addr& client) {
  auto& st = self->state;
  auto found = std::find_if(st.console_clients.begin(), st.console_clients.end(),
                            [&](const caf::actor& c) { return c.address() == client; });
  if (found == st.console_clients.end())
    return;
  withdraw_monitor(st.self_address, *found);
  st.console_clients.erase(found);
  if (st.console_writer.address() == client)
    st.console_writer = nullptr;
  update_console_raw(self);
}

// Why this VM's memory cannot be dumped now, if it cannot.
std::optional<Error> dump_refusal(VmSelf self) {
  auto& st = self->state;
  if (auto refused = debug_refusal(st.life->spec(), DebugFeature::dump))
    return refused;
  if (auto refused = vmm_refusal(st.life->spec(), DebugFeature::dump))
    return refused;
  if (!st.child_alive || st.pid <= 0)
    return Error{ErrorKind::state, "VM '" + st.life->spec().name + "' is not running"};
  return std::nullopt;
}

// Tell this actor when a dump is written: (dumped_atom, token, where, error). Into the dump
// directory, where is the new file's path...
std::function<void(Expected<std::filesystem::path>)> dump_reply(VmSelf self, std::uint64_t token) {
  return [me = caf::actor_cast<VmActorImpl>(self), token](Expected<std::filesystem::path> path) {
    caf::anon_send(me, dumped_atom::value, token, path ? path->string() : std::string(),
                   path ? std::string() : path.error().message);
  };
}
// ... into a client's file, the client's name for it.
std::function<void(Expected<void>)> dump_reply(VmSelf self, std::uint64_t token,
                                               std::string shown) {
  return [me = caf::actor_cast<VmActorImpl>(self), token, shown](Expected<void> written) {
    caf::anon_send(me, dumped_atom::value, token, written ? shown : std::string(),
                   written ? std::string() : written.error().message);
  };
}

caf::result<std::string> dump_on_request(VmSelf self, std::optional<DumpInto> into) {
  auto& st = self->state;
  if (auto refused = dump_refusal(self))
    return to_caf_error(*refused);
  const std::uint64_t token = st.next_dump++;
  auto promise = self->make_response_promise<std::string>();
  st.dump_waiters.emplace(token, promise);
  spdlog::info("vm {}: dumping its memory, as asked", st.life->spec().name);
  if (!into) {
    st.reactor->dump_memory(st.child, st.dumps, dump_reply(self, token));
  } else {
    UniqueFd file(::fcntl(*into->fd, F_DUPFD_CLOEXEC, 3));
    st.reactor->dump_memory(st.child, std::move(file), dump_reply(self, token, into->shown));
  }
  return promise;
}

caf::result<bool> attach_console(VmSelf self, caf::actor client, bool write, bool force) {
  auto& st = self->state;
  const std::string& name = st.life->spec().name;
  if (auto refused = debug_refusal(st.life->spec(), DebugFeature::console))
    return to_caf_error(*refused);
  if (st.dead)
    return to_caf_error(ErrorKind::state, "VM '" + name + "' is dead");
  if (!client)
    return to_caf_error(ErrorKind::protocol, "a console needs a client to show it to");
  if (write && st.console_writer && st.console_writer != client) {
    if (!force) {
      return to_caf_error(ErrorKind::conflict,
                          "VM '" + name +
                              "' already has a console writer: take its input over with "
                              "--force, or watch with vm logs -f " +
                              name);
    }
    caf::anon_send(st.console_writer, ConsoleWriterLost{name});
  }
  if (write)
    st.console_writer = client;
  if (std::find(st.console_clients.begin(), st.console_clients.end(), client) ==
      st.console_clients.end()) {
    self->monitor(client);  // detached when it goes down
    st.console_clients.push_back(std::move(client));
    update_console_raw(self);
  }
  return write;
}

// What `info` answers, and what the service keeps of a dead VM.
VmInfo info_of(VmSelf self) {
  auto& s = self->state;
  const VmSpec& own = s.life->spec();
  VmInfo info;
  info.name = own.name;
  info.state = s.life->state();
  info.vmm = own.vmm;
  info.debug = own.debug;
  if (s.child_alive && s.pid > 0)
    info.pid = s.pid;
  if (s.cid != 0 && !s.dead)
    info.cid = s.cid;
  if (s.started_at && !s.dead) {
    info.uptime_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::steady_clock::now() - *s.started_at)
                         .count();
  }
  info.started_at = s.started_at_unix_ms;
  info.owner_uid = own.owner_uid;
  info.memory_mib = own.memory_mib;
  info.cpus = own.cpus;
  info.kernel = own.shown(own.kernel);
  info.disks = describe_disks(own);
  info.console_log = s.console_log.string();
  info.gdb_port = own.gdb_port;
  info.last_dump = s.last_dump;
  for (const auto& lease : s.leases)
    info.nics.push_back({lease.network, to_string(lease.address), to_string(lease.mac)});
  info.fleet = own.fleet;
  if (s.death) {
    info.reason = s.death->reason;
    info.detail = s.death->detail;
  }
  info.ended_at = s.ended_at_unix_ms;
  info.restarts = s.durable ? s.durable->restarts : s.restarts;
  if (std::holds_alternative<ConsoleReady>(own.ready))
    info.ready_on = "console";
  else if (std::holds_alternative<VsockReady>(own.ready))
    info.ready_on = "vsock";
  return info;
}

// The service keeps what each live VM last told it, for lists: told on every change of its info
// (a death's goes with vm_dead_atom). Before any event to its clients, so that a list asked
// after that event already has it.
void tell_info(VmSelf self) {
  auto& s = self->state;
  if (s.dead)
    return;
  self->send(s.watcher, vm_info_atom::value, self->address(),
             VmSnapshot{info_of(self), s.started_at});
}

// Its VMM's cgroup is named after its run directory: unique per launch, and the same for the
// successor that takes the VMM over (docs/sandbox.md).
std::string cgroup_name(const VmActorState& st) {
  return st.run_dir.filename().string();
}

// What its VMM has used, read on the reactor thread (file reads: never in a handler), and told
// back with usage_atom; its info is as it is when the answer goes.
caf::result<VmStats> stats_of(VmSelf self) {
  auto& s = self->state;
  if (!s.child_alive || s.pid <= 0)
    return VmStats{info_of(self), {}};
  const std::uint64_t token = s.next_stats++;
  auto promise = self->make_response_promise<VmStats>();
  s.stats_waiters.emplace(token, promise);
  std::optional<process::VmCgroup> cgroup;
  if (s.cgroups)
    cgroup = s.cgroups->existing(cgroup_name(s));
  s.reactor->post([me = caf::actor_cast<VmActorImpl>(self), token, pid = s.pid, cgroup] {
    caf::anon_send(me, usage_atom::value, token,
                   process::vm_usage_of(pid, cgroup ? &*cgroup : nullptr));
  });
  return promise;
}

// A durable VM's record: what its supervisor's successor needs to take its VMM over.
void keep_record(VmSelf self) {
  auto& st = self->state;
  if (!st.durable || !st.identity || st.released)
    return;
  const VmSpec& spec = st.life->spec();
  store::VmRecord record;
  record.name = spec.name;
  record.fleet = spec.fleet;
  record.owner_uid = spec.owner_uid.value_or(store::kDaemonOwned);
  record.boot_id = st.durable->boot_id;
  record.pid = st.identity->pid;
  record.start_time = st.identity->start_time;
  record.args = st.identity->args;
  record.cid = st.cid;
  record.vmm = std::string(to_string(spec.vmm));
  record.run_dir = st.run_dir;
  // Before `started` (the VMM was only just exec'd): now is its start, near enough.
  record.started_at_ms = st.started_at_unix_ms.value_or(unix_now_ms());
  record.ready = st.life->state() == VmState::ready;
  record.restarts = st.durable->restarts;
  record.recent_restarts_ms = st.durable->recent_restarts_ms;
  for (const auto& lease : st.leases)
    record.nics.push_back(
        {lease.network, to_string(lease.address), to_string(lease.mac), lease.tap_name});
  self->send(st.durable->keeper, store_vm_atom::value, std::move(record));
}

// Readiness is told only once the VM's record says so: a successor that takes the VMM over
// after a crash trusts the record, and would otherwise wait for a ready line the guest printed
// once, to this daemon (and, with a ready timeout, kill a healthy VM as hung). Until the keeper
// has written it this actor answers nothing, so no client sees "ready" ahead of the disk.
void tell_ready(VmSelf self, std::string_view how) {
  auto& s = self->state;
  spdlog::info("vm {}: {}", s.life->spec().name, how);
  if (!s.durable || !s.identity || s.released) {
    publish(self, current_event(self));
    return;
  }
  keep_record(self);
  self->request(s.durable->keeper, std::chrono::seconds(10), flush_atom::value)
      .await([=](bool) { publish(self, current_event(self)); },
             [=](caf::error&) { publish(self, current_event(self)); });
}

void drop_record(VmSelf self) {
  auto& st = self->state;
  if (st.durable && !st.released)
    self->send(st.durable->keeper, drop_vm_atom::value,
               st.life->spec().owner_uid.value_or(store::kDaemonOwned), st.life->spec().name);
}

// Lets the VMM go (it runs on, for the next supervisor) and ends this actor.
void let_go(VmSelf self) {
  auto& s = self->state;
  spdlog::info("vm {}: left running for the next crosvisord", s.life->spec().name);
  s.released = true;
  s.reactor->release(s.child);
  s.child_alive = false;
  self->quit();
}

void die(VmSelf self, lifecycle::Death death) {
  auto& st = self->state;
  drop_record(self);
  if (st.let_go_waiter) {  // nothing runs on any more
    st.let_go_waiter->deliver(false);
    st.let_go_waiter.reset();
  }
  st.child_alive = false;
  if (st.ready_token != 0)
    st.reactor->cancel_vsock_ready(st.ready_token);
  if (st.dumping_panic && !st.last_dump.empty())
    death.detail += "; memory dump: " + st.last_dump;
  for (auto& [token, waiter] : st.dump_waiters)
    waiter.deliver(to_caf_error(ErrorKind::state, "the VM died before its dump was written"));
  st.dump_waiters.clear();
  // The client named its files; the daemon knows them as /proc/self/fd/N.
  death.detail = st.life->spec().shown_in(std::move(death.detail));
  spdlog::info("vm {}: dead, {} ({})", st.life->spec().name, to_string(death.reason), death.detail);
  st.death = death;
  st.ended_at_unix_ms = unix_now_ms();
  st.dead = true;
  // The private directory goes on the reactor thread: no file system work in a handler.
  st.reactor->post([dir = std::move(st.run_dir)] {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  });
  st.run_dir.clear();
  // A dead VM holds no network: its TAPs went with its VMM, and the network may go once its
  // fleet does (the leases stay, for vm info).
  st.networks.clear();
  for (const auto& client : st.console_clients)
    withdraw_monitor(st.self_address, client);
  st.console_clients.clear();
  st.console_writer = nullptr;
  // The service first: its state, then what the service keeps of it (what `info` says from now
  // on). A client told of the death, or a fleet restarting the VM, finds its name free.
  VmEvent event = current_event(self, death.detail);
  event.reason = death.reason;
  self->send(st.watcher, vm_state_atom::value, self->address(), event);
  self->send(st.watcher, vm_dead_atom::value, self->address(), info_of(self));
  tell_clients(self, event);
  quit_if_unreferenced(self);
}

void send_control(VmSelf self, vmm::ControlRequest request) {
  auto me = caf::actor_cast<VmActorImpl>(self);
  self->state.reactor->control(self->state.child, request, [me](Expected<void> result) {
    // A refusal (ErrorKind::state) is an answer: the VMM cannot do it. Anything else (no answer,
    // a closed socket) leaves it to the step's deadline.
    const bool refused = !result && result.error().kind == ErrorKind::state;
    caf::anon_send(me, stop_sent_atom::value, refused,
                   result ? std::string() : result.error().message);
  });
}

void take_step(VmSelf self, lifecycle::StopStep step) {
  auto& st = self->state;
  const auto& name = st.life->spec().name;
  switch (step) {
    case lifecycle::StopStep::graceful:
      spdlog::info("vm {}: asking the guest to power off", name);
      send_control(self, vmm::ControlRequest::powerdown);
      break;
    case lifecycle::StopStep::quit:
      if (st.dumping_panic)
        spdlog::info("vm {}: the panicked guest is dumped: asking the VMM to quit", name);
      else
        spdlog::warn("vm {}: guest did not power off in time, asking the VMM to quit", name);
      send_control(self, vmm::ControlRequest::quit);
      break;
    case lifecycle::StopStep::terminate:
      spdlog::warn("vm {}: VMM did not quit in time, sending SIGTERM", name);
      st.reactor->signal(st.child, SIGTERM, false);
      break;
    case lifecycle::StopStep::kill:
      spdlog::warn("vm {}: VMM still alive, sending SIGKILL to its process group", name);
      st.reactor->signal(st.child, SIGKILL, true);
      return;  // nothing left to escalate to: the reaped status ends the VM
  }
  self->delayed_send(self, st.life->step_deadline(step), step_due_atom::value, step);
}

vmm::ChildObserver observer_for(VmSelf self);

// The VMM starts with its CID and, for each network it joins, a fresh TAP.
void launch_vmm(VmSelf self) {
  auto& vm = self->state;
  vmm::LaunchContext context{vm.run_dir, vm.cid, vm.console_log, vm.console_log_max_bytes,
                             vm.nvram};
  for (const auto& lease : vm.leases)
    context.nics.push_back({lease.tap, lease.mac});
  context.durable = vm.durable.has_value();
  context.cid_reservation = vm.cid_reservation;
  context.confine = vm.confine;
  context.cgroups = vm.cgroups;
  context.cgroup_name = cgroup_name(vm);
  context.cgroups_unavailable = vm.cgroups_unavailable;
  vm.child = vm.reactor->launch(
      [spec = vm.life->spec(), context = std::move(context)] {
        return vmm::prepare_vmm_launch(spec, context);
      },
      observer_for(self));
  // The VMM has its copies now (or never will): the TAPs go with the VMM.
  for (auto& lease : vm.leases)
    lease.tap.reset();
  vm.child_alive = true;
  vm.lines_wanted = true;    // as every console starts
  update_console_raw(self);  // clients that attached while it was starting
}

// Takes over the VMM an earlier supervisor left running (its record), instead of a launch.
void take_over(VmSelf self) {
  auto& vm = self->state;
  const store::VmRecord& record = *vm.durable->takeover;
  const VmSpec& spec = vm.life->spec();
  vmm::Takeover takeover;
  takeover.identity = {record.pid, record.start_time, record.args};
  takeover.control =
      spec.vmm == VmmKind::qemu
          ? vmm::ControlChannel{vmm::ControlProtocol::qmp, record.run_dir / "qmp.sock"}
          : vmm::ControlChannel{vmm::ControlProtocol::crosvm, record.run_dir / "crosvm.sock"};
  takeover.run_dir = record.run_dir;
  takeover.console_input = spec.debug == DebugLevel::full;
  takeover.console_log = vm.console_log;
  takeover.console_log_max_bytes = vm.console_log_max_bytes;
  takeover.owner = spec.owner_uid;
  takeover.vm = spec.name;
  if (vm.cgroups)
    takeover.cgroup = vm.cgroups->existing(cgroup_name(vm));
  vm.identity = takeover.identity;
  // Its interfaces as they are: the VMM holds their TAPs, on networks found again.
  for (const auto& nic : record.nics) {
    auto address = parse_ipv4(nic.address);
    auto mac = parse_mac(nic.mac);
    if (address && mac)
      vm.leases.push_back(NicLease{nic.network, *address, *mac, nullptr, nic.tap});
  }
  vm.child = vm.reactor->adopt(std::move(takeover), observer_for(self));
  vm.child_alive = true;
  vm.lines_wanted = true;
  update_console_raw(self);
}

// Joins the VM's networks one after the other, then launches.
void join_networks(VmSelf self) {
  auto& vm = self->state;
  if (vm.dead)
    return;  // stopped while it joined
  const std::size_t i = vm.leases.size();
  if (i == vm.networks.size())
    return launch_vmm(self);
  const VmSpec& spec = vm.life->spec();
  self->request(vm.networks[i], std::chrono::seconds(60), net_join_atom::value, spec.name,
                spec.fleet, static_cast<std::uint32_t>(i), spec.nics[i])
      .then(
          [=](NicLease lease) {
            spdlog::info("vm {}: on network {} as {} ({}, {})", self->state.life->spec().name,
                         lease.network, to_string(lease.address), to_string(lease.mac),
                         lease.tap_name);
            self->state.leases.push_back(std::move(lease));
            tell_info(self);
            join_networks(self);
          },
          [=](caf::error& error) {
            die(self, self->state.life->on_launch_failed(from_caf_error(error).message));
          });
}

vmm::ChildObserver observer_for(VmSelf self) {
  auto me = caf::actor_cast<VmActorImpl>(self);
  vmm::ChildObserver observer;
  observer.spawned = [me](pid_t pid) { caf::anon_send(me, spawned_atom::value, pid); };
  observer.started = [me] { caf::anon_send(me, started_atom::value); };
  observer.launch_failed = [me](Error error) { caf::anon_send(me, lfailed_atom::value, error); };
  observer.console_text = [me](std::string lines) {
    caf::anon_send(me, console_atom::value, std::move(lines));
  };
  observer.console_kept = [me](std::vector<std::string> lines) {
    caf::anon_send(me, kept_atom::value, std::move(lines));
  };
  observer.console_bytes = [me](std::string bytes) {
    caf::anon_send(me, console_bytes_atom::value, std::move(bytes));
  };
  observer.vmm_output_line = [me](std::string line) {
    caf::anon_send(me, vmmout_atom::value, std::move(line));
  };
  observer.guest_notice = [me](lifecycle::GuestNotice notice) {
    caf::anon_send(me, notice_atom::value, notice);
  };
  observer.exited = [me](process::ExitStatus status) {
    caf::anon_send(me, exited_atom::value, status);
  };
  observer.identified = [me](process::ProcessIdentity identity) {
    caf::anon_send(me, identified_atom::value, std::move(identity));
  };
  observer.lost = [me](Error why) { caf::anon_send(me, lost_atom::value, std::move(why)); };
  return observer;
}

VmActorImpl::behavior_type vm_behavior(VmSelf self, VmSpec spec,
                                       std::shared_ptr<vmm::Reactor> reactor,
                                       CidRegistryActor cid_registry, VmDeathWatcher watcher,
                                       VmPaths paths, std::vector<NetworkActor> networks) {
  auto& st = self->state;
  st.watcher = std::move(watcher);
  st.networks = std::move(networks);
  st.self_address = self->address();
  st.life = std::make_unique<lifecycle::VmLifecycle>(std::move(spec));
  st.reactor = std::move(reactor);
  st.run_dir = std::move(paths.run_dir);
  st.nvram = std::move(paths.nvram);
  st.durable = std::move(paths.durable);
  st.confine = std::move(paths.confine);
  st.cgroups = std::move(paths.cgroups);
  st.cgroups_unavailable = std::move(paths.cgroups_unavailable);
  st.restarts = paths.restarts;
  if (st.life->spec().debug == DebugLevel::full) {
    st.console_log = std::move(paths.console_log);
    st.console_log_max_bytes = paths.console_log_max_bytes;
    st.console_kept = true;
    st.dumps = vmm::Reactor::DumpPlace{std::move(paths.dump_dir), st.life->spec().name,
                                       st.life->spec().owner_uid, paths.dumps_kept};
  }
  tell_info(self);
  self->set_down_handler([=](const caf::down_msg& down) {
    auto& s = self->state;
    std::erase_if(s.subscribers, [&](const VmActorState::Subscriber& subscriber) {
      return subscriber.actor.address() == down.source;
    });
    detach_console(self, down.source);
    const bool was_proxy = s.proxies.erase(down.source) != 0;
    update_console_lines(self);
    if (!was_proxy || !s.proxies.empty())
      return;
    if (s.dead)
      return quit_if_unreferenced(self);
    // Every client let go of the VM (dropped its handle, crashed or disconnected): stop it.
    spdlog::info("vm {}: the last client handle is gone, stopping", s.life->spec().name);
    if (auto step = s.life->on_stop_requested()) {
      publish(self, current_event(self));
      take_step(self, *step);
    }
  });

  return {
      [=](attach_atom, const ClientProxyActor& proxy) {
        auto& s = self->state;
        self->monitor(proxy);
        s.proxies.emplace(proxy.address(), true);
        update_console_lines(self);
        // A handle made after the VM started learns where it is (a first handle hears
        // everything from `starting` on).
        if (s.life->state() != VmState::created)
          self->send(proxy, current_event(self));
      },
      [=](quiet_atom, const caf::actor_addr& proxy) {
        if (auto known = self->state.proxies.find(proxy); known != self->state.proxies.end())
          known->second = false;
        update_console_lines(self);
      },
      [=](launch_atom) {
        auto& s = self->state;
        if (s.life->state() != VmState::created)
          return;
        s.life->on_launch_requested();
        publish(self, current_event(self));
        const auto failed = [=](caf::error& error) {
          die(self, self->state.life->on_launch_failed(from_caf_error(error).message));
        };
        if (s.durable && s.durable->takeover) {
          // Its CID is the VMM's already: held here for it, then the VMM taken over.
          self->request(cid_registry, std::chrono::seconds(10), take_over_atom::value,
                        caf::actor_cast<caf::actor>(self), s.durable->takeover->cid)
              .then(
                  [=](std::uint32_t cid) {
                    self->state.cid = cid;
                    take_over(self);
                    tell_info(self);
                  },
                  [=](caf::error& error) {
                    // A VMM that runs is taken over whatever the registry says: it holds its
                    // CID's reservation itself, so no one else can be granted that CID.
                    auto& vm = self->state;
                    vm.cid = vm.durable->takeover->cid;
                    spdlog::warn("vm {}: CID {} not registered here ({}); taking it over anyway",
                                 vm.life->spec().name, vm.cid, from_caf_error(error).message);
                    take_over(self);
                    tell_info(self);
                  });
          return;
        }
        // The CID first: the registry holds it until this actor is down.
        self->request(cid_registry, std::chrono::seconds(10), grant_atom::value,
                      caf::actor_cast<caf::actor>(self), s.life->spec().cid.value_or(0))
            .then(
                [=](std::uint32_t cid) {
                  self->state.cid = cid;
                  self->state.leases.clear();
                  tell_info(self);
                  if (!self->state.durable)
                    return join_networks(self);  // then the launch
                  // A durable VMM holds a copy of its CID's reservation.
                  self->request(cid_registry, std::chrono::seconds(10), share_atom::value, cid)
                      .then(
                          [=](SharedFd reservation) {
                            self->state.cid_reservation = std::move(reservation);
                            join_networks(self);
                          },
                          failed);
                },
                failed);
      },
      [=](spawned_atom, pid_t pid) {
        auto& s = self->state;
        s.pid = pid;
        tell_info(self);
        // A kill asked for while the VMM was being started is carried out at once.
        if (s.kill_requested)
          take_step(self, lifecycle::StopStep::kill);
      },
      [=](started_atom) {
        auto& s = self->state;
        const pid_t pid = s.pid;
        s.started_at = std::chrono::steady_clock::now();
        s.started_at_unix_ms = unix_now_ms();
        std::string how = "pid " + std::to_string(pid) + ", cid " + std::to_string(s.cid);
        if (s.durable && s.durable->takeover) {
          // Taken over: its uptime goes on from its first start, its readiness as it was.
          const auto& record = *s.durable->takeover;
          const auto age = std::max<std::int64_t>(0, *s.started_at_unix_ms - record.started_at_ms);
          s.started_at = *s.started_at - std::chrono::milliseconds(age);
          s.started_at_unix_ms = record.started_at_ms;
          s.life->on_taken_over(record.ready);
          how += ", taken over";
        } else {
          s.life->on_started();
        }
        spdlog::info("vm {}: {}, {}", s.life->spec().name, to_string(s.life->state()), how);
        VmEvent running = current_event(self, how);
        running.pid = pid;
        running.cid = s.cid;
        publish(self, running);
        keep_record(self);
        if (s.life->state() == VmState::running) {
          // A VM that is not ready in time is hung (AVF's boot hang-up detection).
          // One taken over has what is left of it since its first start.
          if (auto deadline = ready_deadline(s.life->spec()))
            self->delayed_send(
                self,
                std::max(std::chrono::milliseconds::zero(),
                         *deadline - std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - *s.started_at)),
                ready_due_atom::value);
          // Readiness through the guest's vsock callback: wait for it on the reactor.
          if (const auto* vsock_ready = std::get_if<VsockReady>(&s.life->spec().ready)) {
            auto me = caf::actor_cast<VmActorImpl>(self);
            s.ready_token =
                s.reactor->await_vsock_ready(vsock_ready->port, s.cid, [me](Expected<void> result) {
                  caf::anon_send(me, vsready_atom::value,
                                 result ? std::string() : result.error().message);
                });
          }
        }
        // A stop that arrived while the VM was starting is carried out now.
        if (s.life->stop_was_requested()) {
          if (auto step = s.life->on_stop_requested())
            take_step(self, *step);
        }
      },
      [=](identified_atom, process::ProcessIdentity identity) {
        auto& s = self->state;
        s.identity = std::move(identity);
        keep_record(self);
        if (s.let_go_waiter) {
          auto waiter = std::move(*s.let_go_waiter);
          s.let_go_waiter.reset();
          let_go(self);
          waiter.deliver(true);
        }
      },
      [=](lost_atom, const Error& why) {
        auto& s = self->state;
        s.child_alive = false;
        spdlog::warn("vm {}: not taken over: {}", s.life->spec().name, why.message);
        die(self, s.life->on_lost("its VMM ended while no crosvisord watched it (" + why.message +
                                  "); how is not known"));
      },
      [=](let_go_atom) -> caf::result<bool> {
        auto& s = self->state;
        if (!s.durable || !s.child_alive || s.dead)
          return false;
        if (!s.identity) {
          // Still being started: let go once its record can be written.
          s.let_go_waiter = self->make_response_promise<bool>();
          return *s.let_go_waiter;
        }
        let_go(self);
        return true;
      },
      [=](lfailed_atom, const Error& error) {
        die(self, self->state.life->on_launch_failed(error.message));
      },
      [=](console_atom, const std::string& lines) {
        auto& s = self->state;
        // debug = none: looked at for readiness, then dropped. Line by line only while a line
        // could make the VM ready: a chatty guest's block is otherwise handed on whole.
        if (s.console_kept)
          publish(self, ConsoleText{s.life->spec().name, lines});
        s.life->on_console_output();
        if (s.life->awaits_console_ready()) {
          bool ready = false;
          for_each_line(lines, [&](std::string_view line) {
            ready = ready || s.life->on_console_line(line);
          });
          if (ready)
            tell_ready(self, "ready");
        }
        update_console_lines(self);
        // Acknowledged block by block: each is up to one read of the console, well under the
        // reactor's in-flight limit.
        s.reactor->console_consumed(s.child, lines.size());
      },
      [=](console_bytes_atom, const std::string& bytes) {
        const std::string& name = self->state.life->spec().name;
        for (const auto& client : self->state.console_clients)
          caf::anon_send(client, ConsoleBytes{name, bytes});
      },
      [=](console_attach_atom, caf::actor client, bool write, bool force) {
        return attach_console(self, std::move(client), write, force);
      },
      [=](console_input_atom, const caf::actor& client, std::string bytes) {
        auto& s = self->state;
        if (client && client == s.console_writer && s.child_alive)
          s.reactor->console_input(s.child, std::move(bytes));
      },
      [=](console_detach_atom, const caf::actor& client) {
        detach_console(self, client.address());
      },
      [=](vsready_atom, const std::string& error) {
        auto& s = self->state;
        s.ready_token = 0;
        if (!error.empty()) {
          spdlog::warn("vm {}: cannot wait for the guest's vsock callback: {}", s.life->spec().name,
                       error);
        } else if (s.life->on_vsock_ready()) {
          tell_ready(self, "ready (vsock callback)");
        }
      },
      [=](vmmout_atom, const std::string& line) {
        spdlog::debug("vm {}: vmm: {}", self->state.life->spec().name, line);
        self->state.life->on_vmm_output(line);
      },
      [=](notice_atom, lifecycle::GuestNotice notice) {
        auto& s = self->state;
        s.life->on_guest_notice(notice);
        if (notice != lifecycle::GuestNotice::panicked || s.dumping_panic ||
            !dumps_on_panic(s.life->spec()) || !s.child_alive)
          return;
        // QEMU keeps the guest paused (-action panic=pause): its memory first, then its end.
        s.dumping_panic = true;
        spdlog::warn("vm {}: the guest panicked: dumping its memory before it dies",
                     s.life->spec().name);
        s.reactor->dump_memory(s.child, s.dumps, dump_reply(self, 0));
      },
      [=](dumped_atom, std::uint64_t token, const std::string& where, const std::string& error) {
        auto& s = self->state;
        const auto& name = s.life->spec().name;
        if (error.empty()) {
          spdlog::info("vm {}: memory dumped to {}", name,
                       where.empty() ? "a client's file" : where);
          if (!where.empty()) {  // a client's own file is its to know
            s.last_dump = where;
            tell_info(self);
          }
        } else {
          spdlog::warn("vm {}: no memory dump: {}", name, error);
        }
        if (token != 0) {
          auto waiter = s.dump_waiters.find(token);
          if (waiter == s.dump_waiters.end())
            return;
          if (error.empty())
            waiter->second.deliver(where);
          else
            waiter->second.deliver(to_caf_error(ErrorKind::io, "memory dump: " + error));
          s.dump_waiters.erase(waiter);
          return;
        }
        if (auto step = s.life->on_panic_dumped()) {
          publish(self, current_event(self));
          take_step(self, *step);
        }
      },
      [=](dump_atom) { return dump_on_request(self, std::nullopt); },
      [=](dump_atom, DumpInto into) { return dump_on_request(self, std::move(into)); },
      [=](exited_atom, const process::ExitStatus& status) {
        die(self, self->state.life->on_exited(status));
      },
      [=](stop_atom) {
        auto& s = self->state;
        if (auto step = s.life->on_stop_requested()) {
          publish(self, current_event(self));
          take_step(self, *step);
        }
      },
      [=](stop_atom, std::uint32_t timeout_ms) {
        auto& s = self->state;
        s.life->set_stop_timeout(std::chrono::milliseconds(timeout_ms));
        if (auto step = s.life->on_stop_requested()) {
          publish(self, current_event(self));
          take_step(self, *step);
        }
      },
      [=](stop_atom, kill_atom) {
        auto& s = self->state;
        s.life->on_stop_requested();
        s.kill_requested = true;
        if (s.child_alive && s.pid > 0)
          take_step(self, lifecycle::StopStep::kill);
      },
      [=](ready_due_atom) {
        auto& s = self->state;
        if (!s.life->on_ready_timeout())
          return;
        spdlog::warn("vm {}: not ready within {} ms of its start: killing it (HANGUP)",
                     s.life->spec().name, ready_deadline(s.life->spec())->count());
        publish(self, current_event(self));
        take_step(self, lifecycle::StopStep::kill);
      },
      [=](step_due_atom, lifecycle::StopStep step) {
        if (auto next = self->state.life->on_step_timeout(step))
          take_step(self, *next);
      },
      [=](stop_sent_atom, bool refused, const std::string& error) {
        auto& s = self->state;
        if (error.empty())
          return;
        if (refused) {
          // No graceful way (crosvm on aarch64 has no power button): waiting would only delay
          // the same end.
          if (auto next = s.life->on_graceful_refused(error)) {
            spdlog::warn("vm {}: the VMM refused the power button ({}): asking it to quit",
                         s.life->spec().name, error);
            return take_step(self, *next);
          }
        }
        spdlog::warn("vm {}: stop request failed: {}", s.life->spec().name, error);
      },
      [=](subscribe_atom, caf::actor subscriber) { subscribe(self, std::move(subscriber), true); },
      [=](subscribe_atom, caf::actor subscriber, events_atom) {
        subscribe(self, std::move(subscriber), false);
      },
      [=](logs_atom, std::uint32_t count) -> caf::result<std::vector<std::string>> {
        auto& s = self->state;
        if (auto refused = debug_refusal(s.life->spec(), DebugFeature::console_log))
          return to_caf_error(*refused);
        if (!s.child_alive)
          return last_of(s.kept_lines, count);
        // The reactor keeps the console's last lines: asked there.
        const std::uint64_t token = s.next_tail++;
        auto promise = self->make_response_promise<std::vector<std::string>>();
        s.tail_waiters.emplace(token, std::make_pair(count, promise));
        auto me = caf::actor_cast<VmActorImpl>(self);
        s.reactor->console_tail(s.child, count,
                                [me, token](std::optional<std::vector<std::string>> lines) {
                                  caf::anon_send(me, tail_atom::value, token, lines.has_value(),
                                                 lines.value_or(std::vector<std::string>{}));
                                });
        return promise;
      },
      [=](tail_atom, std::uint64_t token, bool found, std::vector<std::string>& lines) {
        auto& s = self->state;
        auto waiter = s.tail_waiters.find(token);
        if (waiter == s.tail_waiters.end())
          return;
        auto [count, promise] = std::move(waiter->second);
        s.tail_waiters.erase(waiter);
        // Not found: the VMM ended meanwhile, and what it kept came before this answer.
        promise.deliver(found ? std::move(lines) : last_of(s.kept_lines, count));
      },
      [=](kept_atom, std::vector<std::string>& lines) {
        self->state.kept_lines = std::move(lines);
      },
      [=](info_atom) { return info_of(self); },
      [=](stats_atom) { return stats_of(self); },
      [=](usage_atom, std::uint64_t token, VmUsage usage) {
        auto& s = self->state;
        auto waiter = s.stats_waiters.find(token);
        if (waiter == s.stats_waiters.end())
          return;
        waiter->second.deliver(VmStats{info_of(self), std::move(usage)});
        s.stats_waiters.erase(waiter);
      },
  };
}

}  // namespace

VmActorImpl spawn_vm_actor(caf::actor_system& system, VmSpec spec,
                           std::shared_ptr<vmm::Reactor> reactor, CidRegistryActor cid_registry,
                           VmDeathWatcher watcher, VmPaths paths,
                           std::vector<NetworkActor> networks) {
  return system.spawn(vm_behavior, std::move(spec), std::move(reactor), std::move(cid_registry),
                      std::move(watcher), std::move(paths), std::move(networks));
}

}  // namespace crosvisor
