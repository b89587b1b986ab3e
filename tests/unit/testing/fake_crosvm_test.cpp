// The crosvm stand-in's command-line parser: it must refuse what crosvm refuses, or it would hide
// our mistakes instead of catching them.
#include <catch2/catch.hpp>

#include "testing/fake_crosvm/crosvm_args.hpp"

using namespace crosvisor::fake_crosvm;

namespace {
std::string refusal(const std::vector<std::string>& args) {
  auto parsed = parse_crosvm_args(args);
  REQUIRE_FALSE(parsed.has_value());
  return parsed.error().message;
}
}  // namespace

TEST_CASE("the stand-in reads AVF's and our crosvm command lines") {
  auto parsed =
      parse_crosvm_args({"--extended-status",
                         "--log-level",
                         "info,disk=warn",
                         "--no-syslog",
                         "run",
                         "--disable-sandbox",
                         "--name=vm1",
                         "--mem",
                         "size=512",
                         "-c",
                         "2",
                         "--initrd",
                         "/proc/self/fd/4",
                         "-p",
                         "console=ttyS0",
                         "--params",
                         "quiet",
                         "--vsock",
                         "cid=2049",
                         "--block",
                         "/proc/self/fd/5,ro=true",
                         "--rwdisk",
                         "/proc/self/fd/6",
                         "--serial=type=file,path=/proc/self/fd/7,hardware=serial,num=1,console",
                         "--socket",
                         "/proc/self/fd/8",
                         "/proc/self/fd/3"});
  REQUIRE(parsed.has_value());
  CHECK(parsed->extended_status);
  CHECK(parsed->no_syslog);
  CHECK(parsed->name == std::optional<std::string>("vm1"));
  CHECK(parsed->mem_mib == 512);
  CHECK(parsed->cpus == 2);
  CHECK(parsed->params == "console=ttyS0 quiet");
  CHECK(parsed->cid == std::optional<std::uint32_t>(2049));
  REQUIRE(parsed->blocks.size() == 2);
  CHECK(parsed->blocks[0].read_only);
  CHECK_FALSE(parsed->blocks[1].read_only);
  REQUIRE(parsed->serials.size() == 1);
  CHECK(parsed->serials[0].console);
  CHECK(parsed->kernel == std::optional<std::string>("/proc/self/fd/3"));
  CHECK(named_fds(*parsed) == std::vector<int>{3, 4, 5, 6, 7, 8});
}

TEST_CASE("the stand-in refuses what crosvm's parser refuses") {
  CHECK(refusal({"run", "--bogus", "k"}) == "Unrecognized argument: --bogus");
  CHECK(refusal({"--mem", "1", "run", "k"}) == "Unrecognized argument: --mem");  // run option
  CHECK(refusal({"--extended-status"}) == "One of the following subcommands must be present: run");
  CHECK(refusal({"run"}) == "Executable is not specified");
  CHECK(refusal({"run", "k1", "k2"}) == "Unrecognized argument: k2");
  CHECK(refusal({"run", "--mem", "1", "--mem", "2", "k"}) == "Duplicate option: --mem");
  CHECK(refusal({"run", "--mem"}) == "No value provided for option '--mem'.");
  CHECK(refusal({"run", "--mem", "lots", "k"}) == "invalid value for --mem: `lots`");
  CHECK(refusal({"run", "--cpus", "0", "k"}) == "invalid value for --cpus: must be at least 1");
  CHECK(refusal({"run", "--vsock", "cid=2", "k"}) == "invalid value for --vsock: bad cid `cid=2`");
  CHECK(refusal({"run", "--block", "/x,readonly=true", "k"}) ==
        "invalid value for --block: unknown field `readonly`");
  CHECK(refusal({"run", "--block", "/x,ro=yes", "k"}) ==
        "invalid value for --block: expected a boolean, got `yes`");
  CHECK(refusal({"run", "--serial", "type=file", "k"}) ==
        "invalid value for --serial: type file needs a path");
  CHECK(refusal({"run", "--serial", "type=tty", "k"}) ==
        "invalid value for --serial: unknown type `tty`");
  CHECK(refusal({"run", "--serial", "type=sink,num=5", "k"}) ==
        "invalid value for --serial: num must be 1 to 4");
  // crosvm splits every token that begins with '-' and holds '=': a flag given "=true" leaves
  // a second positional, and so does a value of that shape.
  CHECK(refusal({"run", "--disable-sandbox=true", "k"}) == "Unrecognized argument: k");
  CHECK(refusal({"run", "--params", "-v root=/dev/vda", "k"}) == "Unrecognized argument: k");
  CHECK(prepare_argh_args({"--params", "-v root=/dev/vda", "--mem=512"}) ==
        std::vector<std::string>{"--params", "-v root", "/dev/vda", "--mem", "512"});
  // What the parser accepts but the arguments mean wrongly is a run error: exit 1, not 35.
  auto no_kernel = parse_crosvm_args({"run"});
  REQUIRE_FALSE(no_kernel.has_value());
  CHECK(no_kernel.error().kind == crosvisor::ErrorKind::launch);
  CHECK(parse_crosvm_args({"run", "--bogus", "k"}).error().kind ==
        crosvisor::ErrorKind::invalid_config);
  CHECK(refusal({"run", "--params", std::string(2100, 'x'), "k"}) ==
        "the kernel command line is too long: 2100 bytes");
  CHECK(refusal({"run", "--bios", "b", "k"}) == "--bios and a kernel cannot both be given");
  CHECK(refusal({"stop", "/sock"}) == "Unrecognized argument: stop");
}

TEST_CASE("/proc/self/fd paths name fds, other paths do not") {
  CHECK(proc_fd_number("/proc/self/fd/12") == std::optional<int>(12));
  CHECK_FALSE(proc_fd_number("/proc/self/fd/").has_value());
  CHECK_FALSE(proc_fd_number("/proc/self/fd/1x").has_value());
  CHECK_FALSE(proc_fd_number("/tmp/disk.img").has_value());
}

TEST_CASE(
    "crosvm's --net as crosvm reads it: one TAP source, a quoted MAC, and tap-fd among the used "
    "fds") {
  auto parsed = parse_crosvm_args(
      {"run", "--net", "tap-fd=7,mac=\"02:00:00:00:00:01\"", "--net", "tap-fd=9", "k"});
  REQUIRE(parsed);
  REQUIRE(parsed->nets.size() == 2);
  CHECK(parsed->nets[0].tap_fd == 7);
  CHECK(parsed->nets[0].mac == "02:00:00:00:00:01");
  CHECK_FALSE(parsed->nets[1].mac);
  CHECK(named_fds(*parsed) == std::vector<int>{7, 9});
  CHECK(refusal({"run", "--net", "tap-fd=7,tap-name=x", "k"}) ==
        "invalid value for --net: exactly one of tap-name, tap-fd or host-ip");
  CHECK(refusal({"run", "--net", "mac=\"02:00:00:00:00:01\"", "k"}) ==
        "invalid value for --net: exactly one of tap-name, tap-fd or host-ip");
  CHECK(refusal({"run", "--net", "tap-fd=7,mac=02:00:00:00:00:01", "k"}) ==
        "invalid value for --net: bad mac `02:00:00:00:00:01`");
  CHECK(refusal({"run", "--net", "tap-fd=7,speed=10", "k"}) ==
        "invalid value for --net: unknown field `speed`");
}
