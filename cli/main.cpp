// The `vm` command: run, list, info, stop, logs, fleet (through crosvisord), composite, version.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/cluster_commands.hpp"
#include "cli/completion.hpp"
#include "cli/composite_command.hpp"
#include "cli/console_command.hpp"
#include "cli/daemon_commands.hpp"
#include "cli/fleet_commands.hpp"
#include "cli/history_commands.hpp"
#include "cli/run_command.hpp"
#include "core/exit_codes.hpp"
#include "core/vmm_binary_options.hpp"
#include "process/signals.hpp"

int main(int argc, char** argv) {
  using namespace crosvisor;
  CLI::App app{"vm: start, watch and stop crosvisor virtual machines"};
  app.require_subcommand(1);
  app.fallthrough();  // global options may come after the command too: `vm list --socket S`
  app.set_version_flag("--version", std::string("vm ") + CROSVISOR_VERSION);
  std::string log_level = "warn";
  std::optional<std::filesystem::path> socket;
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  app.add_option("--socket", socket,
                 "crosvisord's control socket (default: $CROSVISOR_SOCKET, else your own "
                 "crosvisord's, then the host's; see docs/cli.md)");

  cli::RunOptions run;
  std::string debug;
  auto* run_cmd = app.add_subcommand(
      "run",
      "Boot a VM from FILE through crosvisord (your own is started when none serves you) "
      "and stay attached until it dies; Ctrl-C stops it");
  run_cmd->add_option("FILE", run.file, "VM description (TOML)")->required();
  run_cmd->add_option("--name", run.name, "Override the VM's name")->type_name("NAME");
  const auto level_names = debug_level_names();
  const std::vector<std::string> debug_levels(level_names.begin(), level_names.end());
  run_cmd->add_option("--debug", debug, "full: keep the console; none: keep nothing")
      ->check(CLI::IsMember(debug_levels));
  run_cmd->add_flag("--console", run.console, "Print the guest console on stdout (debug = full)");
  run_cmd->add_flag("-d,--detach", run.detach,
                    "Hand the VM to crosvisord, which keeps it until vm stop; return once ready");
  run_cmd->add_option("--accel", run.accel, "QEMU accelerator list, e.g. tcg or kvm:tcg")
      ->type_name("ACCEL");
  add_vmm_binary_options(*run_cmd, run.vmm_binaries);

  auto* start_cmd = app.add_subcommand(
      "start",
      "Boot a VM from FILE, detached: crosvisord keeps it until vm stop (vm run --detach)");
  start_cmd->add_option("FILE", run.file, "VM description (TOML)")->required();
  start_cmd->add_option("--name", run.name, "Override the VM's name")->type_name("NAME");
  start_cmd->add_option("--accel", run.accel, "QEMU accelerator list, e.g. tcg or kvm:tcg")
      ->type_name("ACCEL");

  std::string target;
  cli::DaemonOptions daemon_options;
  bool all_users = false;
  bool dead_too = false;
  bool quiet = false;
  auto* list_cmd = app.add_subcommand("list", "List your VMs");
  list_cmd->alias("ls");
  list_cmd->alias("ps");
  list_cmd->add_flag("--all-users", all_users, "Every user's VMs (root or the daemon's own user)");
  // As virsh list --all and docker ps -a: the dead ones too. (Before 0.1, --all meant every
  // user's: that is --all-users.)
  list_cmd->add_flag("-a,--all", dead_too, "Dead VMs too, until vm rm (the newest 100 per user)");
  list_cmd->add_flag("-q,--quiet", quiet, "Names only, one per line");
  list_cmd->add_flag("--json", daemon_options.json, "JSON instead of a table");

  std::vector<std::string> stats_names;
  auto* stats_cmd =
      app.add_subcommand("stats", "What your running VMs' VMMs use: CPU, memory, block I/O");
  stats_cmd->add_option("VM", stats_names, "Names (default: every VM of yours)");
  stats_cmd->add_flag("--all-users", all_users, "Every user's VMs (root or the daemon's own user)");
  stats_cmd->add_flag("--json", daemon_options.json, "JSON instead of a table");

  auto* rm_cmd = app.add_subcommand("rm", "Forget a dead VM (vm list --all shows them)");
  rm_cmd->add_option("VM", target, "Name")->required();
  rm_cmd->add_flag("--json", daemon_options.json, "JSON instead of nothing");

  std::optional<std::string> since;
  std::vector<std::string> event_names;
  auto* events_cmd =
      app.add_subcommand("events", "Print your VMs' state changes as they happen, until Ctrl-C");
  events_cmd->add_option("VM", event_names, "Only these VMs");
  events_cmd
      ->add_option("--since", since,
                   "First the remembered ones since: 30s, 5m, 2h, 1d, Unix seconds or "
                   "YYYY-MM-DDTHH:MM:SS")
      ->type_name("TIME");
  events_cmd->add_flag("--all-users", all_users,
                       "Every user's VMs (root or the daemon's own user)");
  events_cmd->add_flag("--json", daemon_options.json, "One JSON object per line");
  bool events_cluster = false;
  bool events_follow = false;
  events_cmd
      ->add_flag("--cluster", events_cluster,
                 "The events of crosvisord's cluster: placements, host losses, VM deaths and "
                 "fences on every host (the last hour, or --since), then exits")
      ->excludes("VM")
      ->excludes("--all-users");
  events_cmd->add_flag("-f,--follow", events_follow, "With --cluster: go on until Ctrl-C")
      ->needs("--cluster");

  std::string until = "dead";
  auto* wait_cmd = app.add_subcommand(
      "wait", "Return when a VM is ready, running or dead (exit code: its death reason's)");
  wait_cmd->add_option("VM", target, "Name or CID")->required();
  wait_cmd->add_option("--until", until, "ready, running or dead (default)")
      ->check(CLI::IsMember({"ready", "running", "dead"}));

  auto* info_cmd = app.add_subcommand("info", "Show one VM");
  info_cmd->add_option("VM", target, "Name or CID")->required();
  info_cmd->add_flag("--json", daemon_options.json, "JSON instead of text");

  std::optional<double> stop_timeout;
  bool force = false;
  auto* stop_cmd = app.add_subcommand("stop", "Stop a VM and wait until it is dead");
  stop_cmd->add_option("VM", target, "Name or CID")->required();
  stop_cmd->add_option("--timeout", stop_timeout,
                       "Seconds the guest gets to power off before it is made to stop");
  stop_cmd->add_flag("--force", force, "SIGKILL the VMM at once");
  stop_cmd->add_flag("--json", daemon_options.json, "JSON instead of text");

  std::uint32_t lines = 0;
  bool follow = false;
  auto* logs_cmd = app.add_subcommand("logs", "Show a debug = full VM's console");
  logs_cmd->add_option("VM", target, "Name or CID")->required();
  logs_cmd->add_option("-n,--lines", lines, "Only the last LINES lines (default: all kept)");
  logs_cmd->add_flag("-f,--follow", follow, "Then print new lines until the VM dies");
  logs_cmd->add_flag("--json", daemon_options.json,
                     "JSON: the lines as an array (with -f, an "
                     "object per line)");

  bool console_force = false;
  auto* console_cmd = app.add_subcommand(
      "console", "Attach this terminal to a debug = full VM's console (Ctrl-] leaves)");
  console_cmd->add_option("VM", target, "Name or CID")->required();
  console_cmd->add_flag("--force", console_force,
                        "Take the console's input over from the terminal that has it");

  std::optional<std::filesystem::path> dump_file;
  auto* dump_cmd = app.add_subcommand(
      "dump", "Write a debug = full QEMU VM's memory as an ELF core (the guest pauses meanwhile)");
  dump_cmd->add_option("VM", target, "Name or CID")->required();
  dump_cmd->add_option("FILE", dump_file,
                       "Write it here (a new file); default: crosvisord's dump directory");

  auto* version_cmd = app.add_subcommand("version", "Versions of vm and of crosvisord");
  version_cmd->add_flag("--json", daemon_options.json, "JSON instead of text");

  auto* hosts_cmd =
      app.add_subcommand("hosts", "The hosts of crosvisord's cluster, up or lost (--cluster)");
  hosts_cmd->add_flag("--json", daemon_options.json, "JSON instead of a table");

  auto* fleet_cmd = app.add_subcommand("fleet", "Fleets of VMs described in one TOML file");
  fleet_cmd->require_subcommand(1);
  fleet_cmd->fallthrough();
  std::filesystem::path fleet_file;
  auto* fleet_check_cmd =
      fleet_cmd->add_subcommand("check", "Validate a fleet file, start nothing");
  fleet_check_cmd->add_option("FILE", fleet_file, "Fleet file (TOML)")->required();
  cli::FleetUpOptions up;
  auto* fleet_up_cmd = fleet_cmd->add_subcommand(
      "up", "Launch a fleet through crosvisord, which then owns it; show progress until ready");
  fleet_up_cmd->add_option("FILE", up.file, "Fleet file (TOML)")->required();
  fleet_up_cmd->add_flag("--foreground", up.foreground,
                         "Hold the fleet here: Ctrl-C (or this command's death) takes it down");
  fleet_up_cmd->add_flag("--until-ready", up.until_ready,
                         "Bring the fleet up, show it ready, then take it down");
  fleet_up_cmd
      ->add_flag("--persist", up.persist,
                 "Bring the fleet up again whenever crosvisord starts (host boot), its files "
                 "reopened with your rights; vm fleet forget undoes it")
      ->excludes("--foreground")
      ->excludes("--until-ready");
  fleet_up_cmd
      ->add_flag("--cluster", up.cluster,
                 "Place the fleet on the hosts of crosvisord's cluster (docs/cluster.md): its "
                 "files must have the same paths on every host")
      ->excludes("--foreground")
      ->excludes("--until-ready")
      ->excludes("--persist");
  fleet_up_cmd->add_flag("--json", daemon_options.json,
                         "The fleet's status as JSON on stdout (progress stays on stderr)");
  std::string fleet_name;
  bool fleet_all = false;
  auto* fleet_status_cmd = fleet_cmd->add_subcommand("status", "Show your fleets");
  fleet_status_cmd->add_option("NAME", fleet_name, "Only this fleet");
  fleet_status_cmd->add_flag("--all-users", fleet_all, "Every user's fleets");
  fleet_status_cmd->add_flag("--json", daemon_options.json, "JSON instead of tables");
  fleet_status_cmd->add_flag("-q,--quiet", quiet, "Names only, one per line");
  bool fleet_cluster = false;
  fleet_status_cmd
      ->add_flag("--cluster", fleet_cluster,
                 "A fleet of crosvisord's cluster: where each VM is placed and how it runs")
      ->needs(fleet_status_cmd->get_option("NAME"));
  std::optional<double> fleet_timeout;
  auto* fleet_down_cmd =
      fleet_cmd->add_subcommand("down", "Stop every VM of a fleet, in parallel, and forget it");
  fleet_down_cmd->add_option("NAME", fleet_name, "The fleet (default: your only one)");
  fleet_down_cmd->add_option("--timeout", fleet_timeout,
                             "Seconds each guest gets to power off before it is made to stop");
  bool fleet_force = false;
  fleet_down_cmd->add_flag("--force", fleet_force, "SIGKILL every VMM of the fleet at once");
  bool fleet_down_all = false;
  fleet_down_cmd
      ->add_flag("--all", fleet_down_all,
                 "Every fleet of yours at once, in parallel (a host's shutdown: persistent fleets "
                 "stay defined)")
      ->excludes("NAME");
  fleet_down_cmd->add_flag("--all-users", fleet_all, "With --all: every user's fleets (root)");
  fleet_down_cmd
      ->add_flag("--cluster", fleet_cluster,
                 "A fleet of crosvisord's cluster: it leaves the cluster and its hosts stop its "
                 "VMs")
      ->needs(fleet_down_cmd->get_option("NAME"))
      ->excludes("--all");
  fleet_down_cmd->add_flag("--json", daemon_options.json, "JSON instead of a table");
  auto* fleet_forget_cmd = fleet_cmd->add_subcommand(
      "forget",
      "Make a persistent fleet ordinary again: it no longer comes up when crosvisord "
      "starts (running, it runs on until brought down)");
  fleet_forget_cmd->add_option("NAME", fleet_name, "The fleet")->required();
  std::string fleet_vm;
  auto* fleet_restart_cmd = fleet_cmd->add_subcommand("restart", "Restart one VM of a fleet");
  fleet_restart_cmd->add_option("VM", fleet_vm, "The VM")->required();
  fleet_restart_cmd->add_option("--fleet", fleet_name, "The fleet (default: the one with VM)")
      ->type_name("FLEET");
  fleet_restart_cmd->add_flag("--json", daemon_options.json, "JSON instead of text");

  std::filesystem::path composite_out;
  std::filesystem::path composite_inspect;
  std::vector<std::string> composite_partitions;
  auto* composite_cmd =
      app.add_subcommand("composite",
                         "Write a composite disk OUT (crosvm format, plus OUT.header, OUT.footer, "
                         "OUT.filler and OUT.vmdk for QEMU) from partition images, or inspect one");
  composite_cmd->add_option("OUT", composite_out, "The composite disk file to write");
  composite_cmd->add_option(
      "--partition", composite_partitions,
      "LABEL:PATH[:writable][:esp][:GUID], in disk order (esp: an EFI system partition)");
  composite_cmd
      ->add_option("--inspect", composite_inspect,
                   "Print the components and GPT of a composite file")
      ->excludes("--partition")
      ->excludes("OUT");

  // Hidden: `vm completion bash` prints the bash completion that the build installs.
  std::string completion_shell;
  auto* completion_cmd =
      app.add_subcommand("completion", "Print a shell completion script")->group("");
  completion_cmd->add_option("SHELL", completion_shell, "bash")
      ->required()
      ->check(CLI::IsMember({"bash"}));

  // A word where a command belongs that names none: say so, rather than "A subcommand is
  // required" (CLI11's words for it).
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    if (word == "--socket" || word == "--log-level") {
      ++i;
      continue;
    }
    if (word.empty() || word[0] == '-')
      continue;
    if (app.get_subcommands([&](CLI::App* sub) { return sub->check_name(word); }).empty()) {
      std::string commands;
      for (auto* sub : app.get_subcommands([](CLI::App* s) { return !s->get_group().empty(); }))
        commands += (commands.empty() ? "" : ", ") + sub->get_name();
      std::cerr << "vm: unknown command '" << word << "' (commands: " << commands
                << "; vm --help)\n";
      return kExitUsage;
    }
    break;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : kExitUsage;
  }
  if (*completion_cmd) {
    std::cout << cli::bash_completion(app);
    return 0;
  }
  process::raise_fd_limit();
  spdlog::set_default_logger(spdlog::stderr_color_mt("vm"));
  spdlog::set_level(spdlog::level::from_str(log_level));
  daemon_options.socket = socket;

  if (*run_cmd) {
    if (!debug.empty())
      run.debug = *debug_level_named(debug);  // checked by IsMember above
    run.socket = socket;
    run.log_level = log_level;
    return cli::run_vm(run);
  }
  if (*start_cmd) {
    run.detach = true;
    run.socket = socket;
    run.log_level = log_level;
    return cli::run_vm(run);
  }
  if (*list_cmd)
    return cli::list_vms(daemon_options, all_users, dead_too, quiet);
  if (*rm_cmd)
    return cli::remove_vm(daemon_options, target);
  if (*stats_cmd)
    return cli::vm_stats(daemon_options, stats_names, all_users);
  if (*events_cmd && events_cluster)
    return cli::cluster_events(daemon_options, since, events_follow);
  if (*events_cmd)
    return cli::watch_events(daemon_options, since, event_names, all_users);
  if (*wait_cmd) {
    return cli::wait_vm(daemon_options, target,
                        until == "ready"     ? VmState::ready
                        : until == "running" ? VmState::running
                                             : VmState::dead);
  }
  if (*info_cmd)
    return cli::show_info(daemon_options, target);
  if (*stop_cmd)
    return cli::stop_vm(daemon_options, target, stop_timeout, force);
  if (*logs_cmd)
    return cli::show_logs(daemon_options, target, lines, follow);
  if (*console_cmd)
    return cli::console_vm(daemon_options, target, console_force);
  if (*dump_cmd)
    return cli::dump_vm(daemon_options, target, dump_file);
  if (*version_cmd)
    return cli::show_version(daemon_options);
  if (*hosts_cmd)
    return cli::show_hosts(daemon_options);
  if (*fleet_check_cmd)
    return cli::fleet_check(fleet_file);
  if (*fleet_up_cmd) {
    up.log_level = log_level;
    return cli::fleet_up(daemon_options, up);
  }
  if (*fleet_status_cmd)
    return fleet_cluster ? cli::cluster_fleet_status(daemon_options, fleet_name)
                         : cli::fleet_status(daemon_options, fleet_name, fleet_all, quiet);
  if (*fleet_down_cmd && fleet_cluster)
    return cli::cluster_fleet_down(daemon_options, fleet_name);
  if (*fleet_down_cmd)
    return fleet_down_all
               ? cli::fleet_down_all(daemon_options, fleet_all, fleet_timeout, fleet_force)
               : cli::fleet_down(daemon_options, fleet_name, fleet_timeout, fleet_force);
  if (*fleet_restart_cmd)
    return cli::fleet_restart(daemon_options, fleet_name, fleet_vm);
  if (*fleet_forget_cmd)
    return cli::fleet_forget(daemon_options, fleet_name);
  if (*composite_cmd) {
    if (!composite_inspect.empty())
      return cli::inspect_composite(composite_inspect);
    if (composite_out.empty() || composite_partitions.empty()) {
      std::cerr << "vm composite: give OUT and at least one --partition, or --inspect FILE\n";
      return kExitUsage;
    }
    return cli::create_composite(composite_out, composite_partitions);
  }
  return kExitUsage;
}
