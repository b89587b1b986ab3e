// crosvisord: the supervisor daemon. It serves the control socket (docs/protocol.md): each
// connection is a session whose VMs die with it. VM files named on the command line are started
// too and held by the daemon itself. Fleets brought up for the daemon are kept in its state
// directory and come back with the next daemon (docs/state.md). SIGTERM stops every VM
// gracefully, in parallel, telling the clients what happens to their VMs, then exits; killed
// with SIGKILL, the daemon takes every VMM with it (PR_SET_PDEATHSIG). With --live-restore, the
// VMs of its fleets (and their networks' dnsmasq) and of its command line are not its children
// in that sense: they run on through SIGTERM and SIGKILL alike, and the next crosvisord takes
// them over. With --exit-when-idle (how `vm` starts a user's
// daemon on demand) it exits once it has had nothing to supervise for that long.
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <iostream>
#include <map>
#include <set>
#include <thread>

#include "actors/durable_vms.hpp"
#include "actors/fleet_actor.hpp"
#include "config/vm_config.hpp"
#include "core/exit_codes.hpp"
#include "core/vmm_binary_options.hpp"
#include "crosvisor/error_bridge.hpp"
#include "crosvisor/messages.hpp"
#include "crosvisor/paths.hpp"
#include "crosvisor/service.hpp"
#include "daemon/cluster_membership.hpp"
#include "daemon/control_socket.hpp"
#include "daemon/fleet_registry.hpp"
#include "daemon/metrics_endpoint.hpp"
#include "daemon/restore.hpp"
#include "daemon/server.hpp"
#include "daemon/service_manager.hpp"
#include "daemon/session.hpp"
#include "daemon/state_lock.hpp"
#include "process/accounts.hpp"
#include "process/cgroups.hpp"
#include "process/signals.hpp"
#include "process/spawner.hpp"
#include "vmm/reactor.hpp"

namespace {

constexpr std::size_t kMaxThroughput = 300;
// A VM cgroup no process has been in for this long, beside crosvisord's own, was left by a
// crosvisord killed before it could clean up (one being started is joined within milliseconds).
constexpr std::chrono::seconds kStaleCgroupAge{60};

using namespace crosvisor;

// Every VM the service has, stopped in parallel; returns once each VM's actor is gone, which is
// after every client holding it has heard of its death (a second signal makes the stop a kill).
void stop_everything(caf::scoped_actor& self, const ServiceActor& service) {
  std::vector<VmActor> vms;
  self->request(service, std::chrono::seconds(10), list_atom::value)
      .receive([&](const std::vector<VmActor>& listed) { vms = listed; }, [&](caf::error&) {});
  std::set<caf::actor_addr> alive;
  for (const auto& vm : vms) {
    alive.insert(vm.address());
    self->monitor(vm);
    self->send<caf::message_priority::high>(vm, stop_atom::value);
  }
  spdlog::info("stopping {} VM(s)", alive.size());
  vms.clear();  // our references must not keep their actors up
  while (!alive.empty()) {
    // Events of the VMs this daemon holds itself are taken off the mailbox too: a message keeps
    // its sender alive, and an unread one from a handle would keep that VM's actor up.
    self->receive([&](const caf::down_msg& down) { alive.erase(down.source); },
                  [](const VmEvent&) {}, [](const ConsoleText&) {},
                  [&](stop_atom, int) {
                    spdlog::warn("second signal: killing every VM");
                    for (const auto& address : alive) {
                      if (auto vm = caf::actor_cast<VmActor>(address))
                        self->send<caf::message_priority::high>(vm, stop_atom::value,
                                                                kill_atom::value);
                    }
                  });
  }
}

// Fleets first, or they would restart the VMs that are being stopped.
void down_fleets(caf::scoped_actor& self, const daemon::FleetRegistryActor& fleets) {
  std::vector<daemon::FleetEntry> entries;
  self->request(fleets, std::chrono::seconds(10), list_atom::value)
      .receive([&](const std::vector<daemon::FleetEntry>& listed) { entries = listed; },
               [](caf::error&) {});
  for (const auto& entry : entries)
    caf::anon_send(entry.fleet, stop_atom::value);
  for (const auto& entry : entries) {
    self->request(entry.fleet, caf::infinite, stop_atom::value)
        .receive([](const FleetStatus&) {}, [](caf::error&) {});
  }
}

// Ends every fleet's actor without bringing the fleet down (live restore: its VMs were let go
// and run on; its record stays for the next daemon). A fleet and the handles it holds keep each
// other alive, so each is ended explicitly.
void end_fleets(caf::scoped_actor& self, const daemon::FleetRegistryActor& fleets) {
  std::vector<daemon::FleetEntry> entries;
  self->request(fleets, std::chrono::seconds(10), list_atom::value)
      .receive([&](const std::vector<daemon::FleetEntry>& listed) { entries = listed; },
               [](caf::error&) {});
  std::set<caf::actor_addr> alive;
  for (const auto& entry : entries) {
    alive.insert(entry.fleet.address());
    self->monitor(entry.fleet);
    self->send_exit(entry.fleet, caf::exit_reason::user_shutdown);
  }
  entries.clear();
  while (!alive.empty()) {
    self->receive([&](const caf::down_msg& down) { alive.erase(down.source); },
                  [](const VmEvent&) {}, [](const ConsoleText&) {}, [](stop_atom, int) {});
  }
}

// Waits until the registry has heard every fleet go down, and the state keeper has written what
// that changed: the records must be right before the daemon exits.
void settle_state(caf::scoped_actor& self, const daemon::FleetRegistryActor& fleets,
                  const StateKeeperActor& keeper) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (bool empty = false; !empty && std::chrono::steady_clock::now() < deadline;) {
    self->request(fleets, std::chrono::seconds(5), list_atom::value)
        .receive([&](const std::vector<daemon::FleetEntry>& listed) { empty = listed.empty(); },
                 [&](caf::error&) { empty = true; });
    if (!empty)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  self->request(keeper, std::chrono::seconds(30), flush_atom::value)
      .receive([](bool) {}, [](caf::error&) {});
}

// Whether the daemon supervises anything: a session, a fleet or a VM.
bool busy(caf::scoped_actor& self, const daemon::Server& server, const ServiceActor& service,
          const daemon::FleetRegistryActor& fleets) {
  if (server.connections() > 0)
    return true;
  bool any = true;  // a daemon that cannot tell stays
  self->request(service, std::chrono::seconds(5), list_atom::value)
      .receive([&](const std::vector<VmActor>& vms) { any = !vms.empty(); }, [](caf::error&) {});
  if (any)
    return true;
  self->request(fleets, std::chrono::seconds(5), list_atom::value)
      .receive([&](const std::vector<daemon::FleetEntry>& listed) { any = !listed.empty(); },
               [](caf::error&) {});
  return any;
}

// The state directory of a daemon not given one: $CROSVISOR_STATE_DIR; else, at the user's own
// socket (or the host's), the user's state directory (/var/lib/crosvisor for root); else one of
// its own beside its socket (SOCKET.state), as its other files are. A daemon at a socket of its
// own choosing (an experiment, a test, a second daemon) then neither shares another daemon's
// state nor writes into the host's.
std::filesystem::path default_state_dir(const std::filesystem::path& socket) {
  const char* chosen = std::getenv("CROSVISOR_STATE_DIR");
  const auto own = user_control_socket();
  const bool usual = (own && *own == socket) || socket == system_control_socket();
  if ((chosen && *chosen) || usual) {
    auto state = user_state_dir();
    if (state)
      return *state;
    // Not worth refusing to serve for.
    spdlog::warn("{}: the state is kept beside the socket", state.error().message);
  }
  return socket.string() + ".state";
}

}  // namespace

int main(int argc, char** argv) {
  process::serve_if_spawner(argc, argv);
  CLI::App app{"crosvisord: supervise crosvisor virtual machines"};
  std::vector<std::filesystem::path> files;
  std::filesystem::path socket_path;
  std::filesystem::path runtime_dir;
  std::filesystem::path log_dir;
  std::filesystem::path log_file;
  std::string log_level = "info";
  bool shared = false;
  std::optional<double> idle_exit_s;
  int ready_fd = -1;
  VmmBinaries vmm_binaries;
  app.set_version_flag("--version", std::string("crosvisord ") + CROSVISOR_VERSION);
  app.add_option("VM_FILES", files, "VM descriptions (TOML) to start and hold");
  app.add_option("--socket", socket_path,
                 "Control socket (default: $XDG_RUNTIME_DIR/crosvisor/control.sock, or "
                 "/run/crosvisor/control.sock for root)");
  app.add_flag("--shared", shared,
               "Let other users connect (socket 0666); each still sees only its own VMs");
  app.add_option("--exit-when-idle", idle_exit_s,
                 "Exit after SECONDS with no session, fleet or VM (how `vm` starts a user's "
                 "daemon on demand)")
      ->check(CLI::Range(0.0, 86400.0));
  app.add_option("--runtime-dir", runtime_dir,
                 "Directory under which VM sockets and temporary files are kept (default: the "
                 "socket's directory)");
  app.add_option("--log-dir", log_dir,
                 "Console logs of debug = full VMs, <uid>/<name>.log (default: logs/ beside the "
                 "socket)");
  std::filesystem::path state_dir;
  app.add_option("--state-dir", state_dir,
                 "What outlives the daemon: its fleets (fleets/, vms/), memory dumps in "
                 "dumps/<uid>/, UEFI variable stores in nvram/<uid>/; one daemon's only (default: "
                 "$CROSVISOR_STATE_DIR, else, at the usual socket, /var/lib/crosvisor for root, "
                 "$XDG_STATE_HOME/crosvisor for users; at another socket, SOCKET.state)");
  bool live_restore = false;
  app.add_flag("--live-restore", live_restore,
               "The VMs of its fleets, with their networks, and of its command line outlive it "
               "(SIGTERM or a crash) and the next crosvisord with this state directory takes "
               "them over; for upgrades without rebooting guests (the systemd unit's default; "
               "docs/state.md)");
  std::string confine = "auto";
  app.add_option("--confine", confine,
                 "Confine each VMM (docs/sandbox.md): the VM owner's uid, else --vmm-user's; no "
                 "capabilities, no_new_privs, namespaces and a root of its own, QEMU under "
                 "seccomp. auto (the default): when crosvisord runs as root")
      ->check(CLI::IsMember({"auto", "on", "off"}));
  std::string vmm_user = "nobody";
  app.add_option("--vmm-user", vmm_user,
                 "Confined VMMs of VMs without an owning user (root's, fleets', the command "
                 "line's) run as this user (default nobody); it must be able to read their "
                 "kernels and images");
  std::optional<std::string> metrics_address;
  app.add_option("--metrics", metrics_address,
                 "Serve Prometheus metrics at http://ADDR/metrics: PORT (on loopback) or "
                 "HOST:PORT, e.g. 9464 (docs/sandbox.md)");
  std::size_t dumps_per_vm = 3;
  app.add_option("--dumps-per-vm", dumps_per_vm,
                 "Memory dumps kept per VM name, the oldest removed first; 0: none (default 3)")
      ->check(CLI::Range(std::size_t{0}, std::size_t{1000}));
  std::uint64_t console_log_max_kib = 16 * 1024;
  app.add_option("--console-log-max-kib", console_log_max_kib,
                 "A VM's console log is rotated to NAME.log.1 at this size (default 16384)")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 30));
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  app.add_option("--log-file", log_file, "Log here instead of stderr");
  app.add_option("--ready-fd", ready_fd, "Write a byte to this fd once serving, then close it");
  daemon::ServerLimits server_limits;
  std::size_t max_vms_per_user = 256;
  std::size_t max_fds_per_user = 4096;
  app.add_option("--max-sessions", server_limits.max_sessions,
                 "Connections served at once, besides the 16 kept for root (default 1024)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20));
  app.add_option("--max-sessions-per-user", server_limits.max_sessions_per_user,
                 "Connections one user other than root may have open (default 64)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20));
  double request_deadline_s = 10;
  app.add_option("--request-deadline", request_deadline_s,
                 "Seconds a client may take to finish sending a request it began (default 10)")
      ->check(CLI::Range(0.1, 3600.0));
  app.add_option("--max-vms-per-user", max_vms_per_user,
                 "VMs one user other than root may have (default 256)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20));
  app.add_option("--max-fds-per-user", max_fds_per_user,
                 "File descriptors of crosvisord the VMs of one user other than root may hold "
                 "(default 4096)")
      ->check(CLI::Range(std::size_t{16}, std::size_t{1} << 24));
  add_vmm_binary_options(app, vmm_binaries);
  daemon::ClusterFlags cluster_flags;
  add_cluster_options(app, cluster_flags);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }
  if (!cluster_flags.host_name.empty()) {
    if (auto name = cluster::check_host_name(cluster_flags.host_name); !name) {
      std::cerr << "--host-name: " << name.error().message << '\n';
      return kExitUsage;
    }
  }
  server_limits.frame_deadline =
      std::chrono::milliseconds(static_cast<std::int64_t>(request_deadline_s * 1000));
  process::raise_fd_limit();
  // Before any thread starts, so that every thread inherits the mask: a --log-file starts
  // spdlog's flusher just below, and a stop signal delivered to a thread not blocking it would
  // kill the daemon on the spot, its VMs unstopped.
  const sigset_t stop_signals = process::block_stop_signals();
  if (log_file.empty()) {
    spdlog::set_default_logger(spdlog::stderr_color_mt("crosvisord"));
  } else {
    spdlog::set_default_logger(spdlog::basic_logger_mt("crosvisord", log_file.string()));
    spdlog::flush_every(std::chrono::seconds(1));
  }
  spdlog::set_level(spdlog::level::from_str(log_level));
  UniqueFd ready(ready_fd);  // closed on every way out: the starter then sees end-of-file
  const auto fail = [&](const Error& error) {
    spdlog::error("{}", error.message);
    spdlog::default_logger()->flush();
    return exit_code_for(error.kind);
  };

  // Validate everything before anything starts.
  std::vector<VmSpec> specs;
  for (const auto& file : files) {
    auto spec = config::load_vm_file(file);
    if (!spec)
      return fail(spec.error());
    specs.push_back(std::move(*spec));
  }

  if (confine == "on" && ::geteuid() != 0)
    return fail(Error{ErrorKind::invalid_config,
                      "--confine on needs root (namespaces, other uids); run crosvisord as root, "
                      "or with --confine auto"});
  const bool confine_vmms = confine == "on" || (confine == "auto" && ::geteuid() == 0);
  if (confine_vmms) {
    // Checked here, once, rather than found out by each VM at its launch.
    const auto user = process::account_named(vmm_user);
    if (!user || user->uid == 0)
      return fail(
          Error{ErrorKind::invalid_config, "--vmm-user " + vmm_user +
                                               (user ? ": is root, and VMMs never run as root"
                                                     : ": no such user in the user database")});
  }

  if (socket_path.empty()) {
    auto own = user_control_socket();
    if (!own)
      return fail(own.error());
    socket_path = *own;
  }
  auto control = daemon::open_control_socket(socket_path, shared);
  if (!control)
    return fail(control.error());
  // Everything of this daemon lives beside its socket (one daemon per socket, by its lock): VM
  // sockets and generated files in a directory of this process's own, so that what a daemon
  // killed with SIGKILL left behind is recognised (its lock is free) and removed by the next;
  // console logs and the last CID granted, which outlast it.
  const auto home = socket_path.parent_path();
  if (state_dir.empty())
    state_dir = default_state_dir(socket_path);
  // Before anything of the state directory's is touched (its fleet records, the cgroups named
  // after it): another daemon's VMs must not be taken for a dead daemon's.
  auto state_lock = daemon::lock_state_dir(state_dir, socket_path);
  if (!state_lock)
    return fail(state_lock.error());
  auto runtime = process::make_private_runtime_dir(runtime_dir.empty() ? home : runtime_dir);
  if (!runtime)
    return fail(runtime.error());
  std::shared_ptr<const process::CgroupHost> cgroup_host;
  // Part of a cluster: joined before serving (a host that cannot join does not start).
  std::unique_ptr<daemon::ClusterMembership> membership;
  if (!cluster_flags.endpoints.empty()) {
    auto joined = daemon::ClusterMembership::join(cluster_flags, vmm_binaries);
    if (!joined)
      return fail(Error{joined.error().kind, "cluster: " + joined.error().message});
    membership = std::move(*joined);
  }
  {
    caf::actor_system_config config;
    add_error_category(config);
    // An actor runs at most this many messages before the next one's turn (CAF's default is no
    // limit): a VM deep in console lines must not keep the others, and their answers, waiting.
    config.set("scheduler.max-throughput", std::size_t{kMaxThroughput});
    // Workers that sleep on one shared queue until there is work, rather than CAF's default of
    // stealing from each other with sleeps between tries: a supervisor is idle or bursty, and
    // the tries were most of its CPU beside a chatty console (docs/performance.md). One worker
    // per core: more would only add stacks (CAF's default is at least four).
    config.set("scheduler.policy", caf::atom("sharing"));
    config.set("scheduler.max-threads",
               std::size_t{std::max(2u, std::thread::hardware_concurrency())});
    caf::actor_system system{config};
    // VMMs started by crosvisord's own program run again as their spawner: a start then costs
    // the same with thousands of VMs running as with none (process/spawner.hpp).
    auto reactor = std::make_shared<vmm::Reactor>("/proc/self/exe");
    auto options = make_service_options(runtime->path, reactor);
    options.log_dir = log_dir.empty() ? home / "logs" : log_dir;
    options.log_max_bytes = console_log_max_kib * 1024;
    options.dump_dir = state_dir / "dumps";
    options.nvram_dir = state_dir / "nvram";
    options.dumps_per_vm = dumps_per_vm;
    options.cid_state_file = home / "last-cid";
    options.vmm_binaries = vmm_binaries;
    options.state_dir = state_dir;
    options.max_vms_per_owner = max_vms_per_user;
    options.confine_vmms = confine_vmms;
    options.vmm_user = vmm_user;
    // VMM cgroups under this process's own, in a directory named after the state directory,
    // so that the next daemon of that state finds the ones it takes over.
    auto cgroups = process::CgroupHost::of_this_process(process::cgroup_base_name(state_dir));
    if (cgroups) {
      if (const auto removed = cgroups->remove_empty() + cgroups->sweep_stale(kStaleCgroupAge))
        spdlog::info("cgroups: {} left by VMMs or crosvisord processes that ended, removed",
                     removed);
      cgroup_host = std::make_shared<const process::CgroupHost>(std::move(*cgroups));
      options.cgroups = cgroup_host;
    } else {
      options.cgroups_unavailable = cgroups.error().message;
      spdlog::warn("cgroups: VMMs run without limits: {}", cgroups.error().message);
    }
    options.max_fds_per_owner = max_fds_per_user;
    // The last tenth of the fd table (at least 256) is root's and the daemon's own: a user at
    // its limits never makes root's requests fail for want of a descriptor.
    rlimit open_files{};
    if (::getrlimit(RLIMIT_NOFILE, &open_files) == 0 && open_files.rlim_cur != RLIM_INFINITY) {
      options.fd_capacity = open_files.rlim_cur;
      options.fd_reserve = std::max<std::size_t>(256, options.fd_capacity / 10);
    }
    auto service = spawn_service(system, options);
    caf::scoped_actor self{system};
    // The CID registry starts on a thread of its own and opens its files there: asked once
    // before anything is served, so that a daemon that answers already holds what it will hold.
    self->request(service, std::chrono::seconds(10), in_use_atom::value)
        .receive([](std::uint64_t) {},
                 [](caf::error& error) {
                   spdlog::warn("the CID registry did not answer: {}",
                                from_caf_error(error).message);
                 });

    auto state = std::make_shared<const store::StateStore>(state_dir);
    auto keeper = spawn_state_keeper(system, state);
    auto fleets = daemon::spawn_fleet_registry(system, service, keeper, live_restore);
    std::vector<std::string> own_names;
    for (const auto& spec : specs)
      own_names.push_back(spec.name);
    auto restored =
        daemon::restore_fleets(self, *state, fleets, keeper, own_names, cgroup_host.get());

    // The VMs from the command line, held by the daemon itself. With live restore they outlive
    // it as its fleets' do, and the next daemon with the same command line takes them over (one
    // the daemon before left running is taken over whatever this one's flags).
    std::vector<VmHandle> held;
    for (auto& spec : specs) {
      auto left = restored.own_vms.find(spec.name);
      const auto reply = [&](VmHandle vm) { held.push_back(vm); };
      const auto failed = [&](caf::error& error) {
        spdlog::error("{}: {}", spec.name, from_caf_error(error).message);
      };
      if (live_restore || left != restored.own_vms.end()) {
        DurableStart durable;
        if (left != restored.own_vms.end())
          durable.takeover = std::move(left->second);
        self->request(caf::actor_cast<DurableVms>(service), caf::infinite,
                      create_durable_atom::value, spec, caf::actor_cast<caf::actor>(self),
                      std::move(durable))
            .receive(reply, failed);
      } else {
        self->request(service, caf::infinite, create_atom::value, spec,
                      caf::actor_cast<caf::actor>(self))
            .receive(reply, failed);
      }
    }
    daemon::SessionContext context{&system, service, fleets, ::geteuid(), vmm_binaries, true};
    caf::actor cluster_host;
    if (membership) {
      context.cluster = membership->spawn_reader(system);
      context.host_name = membership->host_name();
      cluster_host = membership->spawn_host(system, service);
    }
    auto server = std::make_unique<daemon::Server>(
        std::move(*control),
        [context](const daemon::PeerCredentials& peer,
                  std::shared_ptr<daemon::ConnectionPort> connection) {
          return daemon::start_session(context, peer, std::move(connection));
        },
        server_limits);
    std::unique_ptr<metrics::HttpServer> metrics_server;
    if (metrics_address) {
      auto started = daemon::start_metrics(*metrics_address, server->path());
      if (!started)
        return fail(started.error());
      metrics_server = std::move(*started);
      spdlog::info("metrics at http://{}:{}/metrics", metrics_server->host(),
                   metrics_server->port());
    }
    reactor->watch_signals(stop_signals,
                           [&](int signo) { caf::anon_send(self, stop_atom::value, signo); });
    spdlog::info(
        "serving {}; supervising {} VM(s) of its own and {} fleet(s) from {}; SIGTERM "
        "stops them all",
        server->path().string(), held.size(), restored.restored, state_dir.string());
    if (ready) {
      [[maybe_unused]] auto n = ::write(ready.get(), "R", 1);
      ready.reset();
    }
    // Under systemd (Type=notify): serving now. Nothing happens without $NOTIFY_SOCKET.
    daemon::notify_service_manager("READY=1\nSTATUS=serving " + server->path().string() + "; " +
                                   std::to_string(restored.restored) + " fleet(s) restored");

    const auto idle_grace =
        std::chrono::milliseconds(static_cast<std::int64_t>(idle_exit_s.value_or(0) * 1000));
    auto idle_since = std::chrono::steady_clock::now();
    bool running = true;
    while (running) {
      self->receive(
          [](const VmEvent&) {},  // of the VMs it holds: spdlog has told their story
          [](const ConsoleText&) {},
          [&](stop_atom, int signo) {
            daemon::notify_service_manager("STOPPING=1");
            spdlog::info("signal {}: stopping every VM{}", signo,
                         live_restore ? " but those of its fleets, which run on" : "");
            // No new clients; the connected ones hear what happens to their VMs, then the
            // daemon hangs up on them.
            server->stop_accepting();
            server->broadcast({{"event", "daemon"},
                               {"state", "stopping"},
                               {"detail", "crosvisord received signal " + std::to_string(signo) +
                                              (live_restore ? " and stops every VM but its fleets'"
                                                            : " and stops every VM")}});
            if (live_restore) {
              // An upgrade or a restart: the fleets' VMs and the command line's are let go, for
              // the next daemon (before their handles go: a VM nobody holds stops).
              self->request(caf::actor_cast<DurableVms>(service), std::chrono::seconds(30),
                            let_go_all_atom::value)
                  .receive(
                      [](std::uint32_t n) {
                        spdlog::info("{} VM(s) of its fleets left running for the next crosvisord",
                                     n);
                      },
                      [](caf::error&) {});
              held.clear();
              end_fleets(self, fleets);
            } else {
              held.clear();  // the VMs from the command line stop with the rest
              down_fleets(self, fleets);
              settle_state(self, fleets, keeper);
            }
            if (cluster_host) {
              // Before the VMs stop: it would start the cluster's VMs here again.
              self->send_exit(cluster_host, caf::exit_reason::user_shutdown);
              cluster_host = caf::actor();
            }
            stop_everything(self, service);
            running = false;
          },
          caf::after(std::chrono::seconds(1)) >>
              [&] {
                if (!idle_exit_s)
                  return;
                const auto now = std::chrono::steady_clock::now();
                if (busy(self, *server, service, fleets))
                  idle_since = now;
                else if (now - idle_since >= idle_grace)
                  running = false;
              });
    }
    if (idle_exit_s)
      spdlog::info("nothing left to supervise: exiting");
    metrics_server.reset();  // before the sessions it asks go
    server.reset();
    held.clear();
    self->send_exit(service, caf::exit_reason::user_shutdown);
    self->send_exit(fleets, caf::exit_reason::user_shutdown);
    self->send(keeper, finish_atom::value);
    if (context.cluster)  // detached: ended explicitly, or the actor system never ends
      self->send_exit(context.cluster, caf::exit_reason::user_shutdown);
    if (cluster_host)
      self->send_exit(cluster_host, caf::exit_reason::user_shutdown);
  }
  membership.reset();  // leaves the cluster: its live record goes at once
  // The VMMs' cgroups, and its own directory for them, once empty: a VMM left running for the
  // next daemon keeps its own (and so the directory).
  if (cgroup_host) {
    cgroup_host->remove_empty();
    cgroup_host->remove_bases();
  }
  std::error_code ignored;
  std::filesystem::remove_all(runtime->path, ignored);
  spdlog::info("exiting");
  return kExitOk;
}
