#include "vmm/vmm_launch.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstring>

#include "core/handed_files.hpp"

namespace crosvisor::vmm {

Expected<UniqueFd> open_for_vmm(const std::filesystem::path& path, std::string_view role) {
  const std::string what = std::string(role) + " " + path.string();
  auto opened = open_or_take(path, O_RDONLY, role);
  if (!opened)
    return opened;
  UniqueFd fd = std::move(*opened);
  struct stat info {};
  if (fstat(fd.get(), &info) != 0)
    return std::unexpected(errno_error(ErrorKind::io, what, errno));
  if (!S_ISREG(info.st_mode))
    return make_error(ErrorKind::invalid_image, what + ": not a regular file");
  if (info.st_size == 0)
    return make_error(ErrorKind::invalid_image, what + ": file is empty");
  return fd;
}

Expected<std::pair<UniqueFd, UniqueFd>> make_pipe() {
  int ends[2];
  if (pipe2(ends, O_CLOEXEC) != 0)
    return std::unexpected(errno_error(ErrorKind::io, "pipe", errno));
  return std::pair<UniqueFd, UniqueFd>{UniqueFd(ends[0]), UniqueFd(ends[1])};
}

namespace {

// The supervisor's end of one of a durable VM's FIFOs: read-write, so that opening never waits
// for the other end and reading never ends while the VMM lives (the reactor reads what is left
// when it reaps).
Expected<UniqueFd> open_fifo(const std::filesystem::path& fifo, bool create) {
  if (create && ::mkfifo(fifo.c_str(), 0600) != 0 && errno != EEXIST)
    return std::unexpected(errno_error(ErrorKind::io, "mkfifo " + fifo.string(), errno));
  UniqueFd fd(::open(fifo.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW));
  if (!fd)
    return std::unexpected(errno_error(ErrorKind::io, "open " + fifo.string(), errno));
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0 || !S_ISFIFO(info.st_mode))
    return make_error(ErrorKind::io, fifo.string() + " is not a FIFO");
  return fd;
}

}  // namespace

Expected<DurableConsole> open_durable_console(const std::filesystem::path& run_dir, bool create) {
  DurableConsole console;
  for (auto [name, end] : {std::pair{kConsoleOutFifo, &console.out},
                           {kConsoleInFifo, &console.in},
                           {kVmmOutputFifo, &console.vmm_output}}) {
    auto fd = open_fifo(run_dir / name, create);
    if (!fd)
      return std::unexpected(fd.error());
    *end = std::move(*fd);
  }
  // As large as the host allows: what a guest may print while no supervisor reads.
  ::fcntl(console.out.get(), F_SETPIPE_SZ, kDurableConsoleBuffer);
  return console;
}

Expected<UniqueFd> open_durable_output(const std::filesystem::path& run_dir, bool create) {
  return open_fifo(run_dir / kVmmOutputFifo, create);
}

Expected<UniqueFd> open_fifo_for_vmm(const std::filesystem::path& fifo) {
  UniqueFd fd(::open(fifo.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
  if (!fd)
    return std::unexpected(errno_error(ErrorKind::io, "open " + fifo.string(), errno));
  return fd;
}

Expected<UniqueFd> listen_unix(const std::filesystem::path& path, int type) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.native().size() >= sizeof(address.sun_path)) {
    return make_error(ErrorKind::io, path.string() + ": socket path too long");
  }
  std::memcpy(address.sun_path, path.c_str(), path.native().size() + 1);
  UniqueFd fd(::socket(AF_UNIX, type | SOCK_CLOEXEC, 0));
  if (!fd)
    return std::unexpected(errno_error(ErrorKind::io, "socket", errno));
  ::unlink(path.c_str());
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    return std::unexpected(errno_error(ErrorKind::io, "bind " + path.string(), errno));
  }
  if (::listen(fd.get(), 8) != 0) {
    return std::unexpected(errno_error(ErrorKind::io, "listen " + path.string(), errno));
  }
  return fd;
}

Expected<UniqueFd> listen_loopback(std::uint16_t port, std::string_view role) {
  const std::string what = std::string(role) + " 127.0.0.1:" + std::to_string(port);
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd)
    return std::unexpected(errno_error(ErrorKind::io, "socket", errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    const int saved = errno;
    return std::unexpected(
        errno_error(saved == EADDRINUSE ? ErrorKind::conflict : ErrorKind::io, what, saved));
  }
  if (::listen(fd.get(), 1) != 0)
    return std::unexpected(errno_error(ErrorKind::io, "listen " + what, errno));
  return fd;
}

Expected<void> plan_standard_streams(VmmLaunch& launch, const LaunchContext& context) {
  UniqueFd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!null)
    return std::unexpected(errno_error(ErrorKind::io, "open /dev/null", errno));
  launch.request.fds.set(0, std::move(null));
  if (context.durable) {
    auto ours = open_fifo(context.run_dir / kVmmOutputFifo, true);
    if (!ours)
      return std::unexpected(ours.error());
    auto theirs = open_fifo_for_vmm(context.run_dir / kVmmOutputFifo);
    if (!theirs)
      return std::unexpected(theirs.error());
    UniqueFd copy(fcntl(theirs->get(), F_DUPFD_CLOEXEC, 3));
    if (!copy)
      return std::unexpected(errno_error(ErrorKind::io, "dup", errno));
    launch.vmm_output = std::move(*ours);
    launch.request.fds.set(1, std::move(*theirs));
    launch.request.fds.set(2, std::move(copy));
    return {};
  }
  auto output = make_pipe();
  if (!output)
    return std::unexpected(output.error());
  launch.vmm_output = std::move(output->first);
  UniqueFd output_copy(fcntl(output->second.get(), F_DUPFD_CLOEXEC, 3));
  if (!output_copy)
    return std::unexpected(errno_error(ErrorKind::io, "dup", errno));
  launch.request.fds.set(1, std::move(output->second));
  launch.request.fds.set(2, std::move(output_copy));
  return {};
}

Expected<BootFiles> plan_boot_files(const VmSpec& spec, process::FdPlan& fds) {
  // An embedding application's spec reaches here unchecked by config/ and protocol/.
  if (auto problem = boot_problem(spec))
    return make_error(ErrorKind::invalid_config, std::string(problem->key) + ": " + problem->why);
  BootFiles files;
  if (spec.bootloader) {
    auto bootloader = open_for_vmm(*spec.bootloader, "bootloader");
    if (!bootloader)
      return std::unexpected(bootloader.error());
    files.bootloader = fds.add(std::move(*bootloader));
    if (spec.nvram_template) {
      auto vars = open_for_vmm(*spec.nvram_template, "nvram_template");
      if (!vars)
        return std::unexpected(vars.error());
      files.nvram_template = std::move(*vars);
    }
    return files;
  }
  auto kernel = open_for_vmm(spec.kernel, "kernel");
  if (!kernel)
    return std::unexpected(kernel.error());
  files.kernel = fds.add(std::move(*kernel));
  if (spec.initrd) {
    auto initrd = open_for_vmm(*spec.initrd, "initrd");
    if (!initrd)
      return std::unexpected(initrd.error());
    files.initrd = fds.add(std::move(*initrd));
  }
  return files;
}

Expected<std::vector<int>> plan_taps(const LaunchContext& context, process::FdPlan& fds) {
  std::vector<int> numbers;
  for (const auto& nic : context.nics) {
    // A copy: the network keeps its own until the launch is over, the VMM gets this one.
    UniqueFd copy(::fcntl(nic.tap->get(), F_DUPFD_CLOEXEC, 3));
    if (!copy)
      return std::unexpected(errno_error(ErrorKind::io, "dup TAP", errno));
    numbers.push_back(fds.add(std::move(copy)));
  }
  return numbers;
}

Expected<int> plan_console(VmmLaunch& launch, const LaunchContext& context) {
  if (context.durable) {
    auto ours = open_durable_console(context.run_dir, true);
    if (!ours)
      return std::unexpected(ours.error());
    auto theirs = open_fifo_for_vmm(context.run_dir / kConsoleOutFifo);
    if (!theirs)
      return std::unexpected(theirs.error());
    launch.console = std::move(ours->out);
    return launch.request.fds.add(std::move(*theirs));
  }
  auto console = make_pipe();
  if (!console)
    return std::unexpected(console.error());
  launch.console = std::move(console->first);
  return launch.request.fds.add(std::move(console->second));
}

Expected<int> plan_console_input(VmmLaunch& launch, const LaunchContext& context) {
  if (context.durable) {
    auto ours = open_durable_console(context.run_dir, true);
    if (!ours)
      return std::unexpected(ours.error());
    auto theirs = open_fifo_for_vmm(context.run_dir / kConsoleInFifo);
    if (!theirs)
      return std::unexpected(theirs.error());
    launch.console_input = std::move(ours->in);
    return launch.request.fds.add(std::move(*theirs));
  }
  auto input = make_pipe();
  if (!input)
    return std::unexpected(input.error());
  launch.console_input = std::move(input->second);
  return launch.request.fds.add(std::move(input->first));
}

Expected<int> plan_console_socket(VmmLaunch& launch) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
    return std::unexpected(errno_error(ErrorKind::io, "socketpair (console)", errno));
  UniqueFd ours(pair[0]);
  UniqueFd theirs(pair[1]);
  UniqueFd input(::fcntl(ours.get(), F_DUPFD_CLOEXEC, 3));
  if (!input)
    return std::unexpected(errno_error(ErrorKind::io, "dup (console)", errno));
  launch.console = std::move(ours);
  launch.console_input = std::move(input);
  return launch.request.fds.add(std::move(theirs));
}

}  // namespace crosvisor::vmm
