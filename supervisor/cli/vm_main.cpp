// The `vm` command.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>

#include "supervisor/cli/run_command.hpp"
#include "supervisor/exit_codes.hpp"

int main(int argc, char** argv) {
  using namespace crosvisor;
  CLI::App app{"vm: start, watch and stop crosvisor virtual machines"};
  app.require_subcommand(1);
  std::string log_level = "warn";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));

  cli::RunOptions run;
  std::string debug;
  auto* run_cmd = app.add_subcommand("run", "Boot a VM from FILE and stay attached until it dies");
  run_cmd->add_option("FILE", run.file, "VM description (TOML)")->required();
  run_cmd->add_option("--name", run.name, "Override the VM's name");
  run_cmd->add_option("--debug", debug, "full: stream the console; none: keep nothing")
      ->check(CLI::IsMember({"full", "none"}));
  run_cmd->add_option("--accel", run.accel, "QEMU accelerator list, e.g. tcg or kvm:tcg");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : kExitUsage;
  }
  // stdout carries the guest console; the supervisor's own log goes to stderr.
  spdlog::set_default_logger(spdlog::stderr_color_mt("vm"));
  spdlog::set_level(spdlog::level::from_str(log_level));
  if (!debug.empty())
    run.debug = debug == "full" ? DebugLevel::full : DebugLevel::none;

  if (*run_cmd)
    return cli::run_vm(run);
  return kExitUsage;
}
