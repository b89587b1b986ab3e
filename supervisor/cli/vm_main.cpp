// The `vm` command.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>

#include "supervisor/cli/composite_command.hpp"
#include "supervisor/cli/run_command.hpp"
#include "supervisor/cli/vmm_binary_options.hpp"
#include "supervisor/exit_codes.hpp"
#include "supervisor/signals.hpp"

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
  add_vmm_binary_options(*run_cmd, run.vmm_binaries);

  std::filesystem::path composite_out;
  std::filesystem::path composite_inspect;
  std::vector<std::string> composite_partitions;
  auto* composite_cmd =
      app.add_subcommand("composite",
                         "Write a composite disk OUT (crosvm format, plus OUT.header, OUT.footer, "
                         "OUT.filler and OUT.vmdk for QEMU) from partition images, or inspect one");
  composite_cmd->add_option("OUT", composite_out, "The composite disk file to write");
  composite_cmd->add_option("--partition", composite_partitions,
                            "LABEL:PATH[:writable][:GUID], in disk order");
  composite_cmd
      ->add_option("--inspect", composite_inspect,
                   "Print the components and GPT of a composite file")
      ->excludes("--partition")
      ->excludes("OUT");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : kExitUsage;
  }
  raise_fd_limit();
  // stdout carries the guest console; the supervisor's own log goes to stderr.
  spdlog::set_default_logger(spdlog::stderr_color_mt("vm"));
  spdlog::set_level(spdlog::level::from_str(log_level));
  if (!debug.empty())
    run.debug = debug == "full" ? DebugLevel::full : DebugLevel::none;

  if (*run_cmd)
    return cli::run_vm(run);
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
