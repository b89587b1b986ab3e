#include "testing/fake_crosvm/input_checks.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "disk/composite.hpp"

namespace crosvisor::fake_crosvm {
namespace {

Error failure(std::string message) {
  return Error{ErrorKind::launch, std::move(message)};
}

// crosvm's open_file_or_duplicate: /proc/self/fd/N is taken as fd N, which must be open and must
// not be close-on-exec ("all crosvm FDs are close on exec", so a CLOEXEC one is not ours).
Expected<int> inherited_fd(const std::string& path, const std::string& role) {
  const auto number = proc_fd_number(path);
  if (!number)
    return std::unexpected(failure(role + " " + path + ": not a /proc/self/fd path"));
  const int flags = fcntl(*number, F_GETFD);
  if (flags < 0)
    return std::unexpected(failure(role + " " + path + ": fd " + std::to_string(*number) +
                                   " is not open (was it inherited?)"));
  if (flags & FD_CLOEXEC)
    return std::unexpected(failure(role + " " + path + ": fd is close-on-exec"));
  return *number;
}

// An input named by path or by fd; `writable` asks for an fd opened for writing.
Expected<int> open_input(const std::string& path, const std::string& role, bool writable) {
  int fd = -1;
  if (proc_fd_number(path)) {
    auto inherited = inherited_fd(path, role);
    if (!inherited)
      return inherited;
    fd = *inherited;
    const int mode = fcntl(fd, F_GETFL) & O_ACCMODE;
    if (writable && mode == O_RDONLY)
      return std::unexpected(failure(role + " " + path + ": read-only fd for a writable use"));
    if (!writable && mode == O_WRONLY)
      return std::unexpected(failure(role + " " + path + ": write-only fd for a read"));
  } else {
    fd = ::open(path.c_str(), (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd < 0)
      return std::unexpected(failure(role + " " + path + ": " + std::strerror(errno)));
  }
  return fd;
}

Expected<void> check_boot_file(const std::string& path, const std::string& role) {
  auto fd = open_input(path, role, false);
  if (!fd)
    return std::unexpected(fd.error());
  struct stat info {};
  if (fstat(*fd, &info) != 0 || !S_ISREG(info.st_mode) || info.st_size == 0)
    return std::unexpected(failure(role + " " + path + ": not a non-empty regular file"));
  return {};
}

Expected<std::string> read_all(int fd, const std::string& what) {
  struct stat info {};
  if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode))
    return std::unexpected(failure(what + ": not a regular file"));
  if (info.st_size > (1 << 20))
    return std::unexpected(failure(what + ": composite file too large"));
  std::string bytes(static_cast<std::size_t>(info.st_size), '\0');
  if (pread(fd, bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size()))
    return std::unexpected(failure(what + ": short read"));
  return bytes;
}

void record_open(const Build& build, const std::string& path) {
  if (build.record.empty())
    return;
  const int fd = ::open(build.record.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    return;
  const std::string line = "opened " + path + "\n";
  [[maybe_unused]] auto n = ::write(fd, line.data(), line.size());
  ::close(fd);
}

// crosvm's LockFileFailure: the lock is on the open file description.
Expected<void> lock(int fd, bool writable, const std::string& what) {
  if (::flock(fd, (writable ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0)
    return std::unexpected(failure(what +
                                   ": LockFileFailure: the disk image is locked by "
                                   "another process (" +
                                   std::strerror(errno) + ")"));
  return {};
}

std::uint64_t big_endian(const unsigned char* bytes, std::size_t size) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < size; ++i)
    value = (value << 8) | bytes[i];
  return value;
}

// crosvm's detect_image_type: what the first bytes say the image is. A qcow2 image's backing
// file is opened by path, with crosvm's rights (no sandbox here): recorded, and opened.
Expected<std::string> probe(int fd, const std::string& what, const Build& build) {
  unsigned char head[24] = {};
  const ssize_t n = ::pread(fd, head, sizeof(head), 0);
  if (n >= 4 && std::memcmp(head, "QFI\xfb", 4) == 0) {
    std::string description = "qcow2";
    const auto offset = big_endian(head + 8, 8);
    const auto size = big_endian(head + 16, 4);
    if (offset != 0 && size > 0 && size < 4096) {
      std::string backing(size, '\0');
      if (::pread(fd, backing.data(), size, static_cast<off_t>(offset)) ==
          static_cast<ssize_t>(size)) {
        record_open(build, backing);
        const int opened = ::open(backing.c_str(), O_RDONLY | O_CLOEXEC);
        description += " over " + backing + (opened >= 0 ? "" : " (unreadable)");
        if (opened >= 0)
          ::close(opened);
      }
    }
    return description;
  }
  if (n >= 4 && std::memcmp(head, "\x3a\xff\x26\xed", 4) == 0)
    return std::string("android-sparse");
  if (n >= 4 && std::memcmp(head, "\x28\xb5\x2f\xfd", 4) == 0)
    return std::string("zstd");
  (void)what;
  return std::string("raw");
}

// A composite disk: the file decodes as crosvm decodes it, every component is an inherited fd
// with the access the disk needs, and the first component carries a GPT header.
Expected<std::string> check_composite(int fd, const BlockOption& block,
                                      std::vector<int>& component_fds, const Build& build) {
  auto bytes = read_all(fd, "block " + block.path);
  if (!bytes)
    return std::unexpected(bytes.error());
  auto composite = disk::decode_composite(*bytes);
  if (!composite)
    return std::unexpected(failure("block " + block.path + ": " + composite.error().message));
  for (std::size_t i = 0; i < composite->components.size(); ++i) {
    const auto& part = composite->components[i];
    const std::string role = "block " + block.path + " component " + std::to_string(i);
    if (!proc_fd_number(part.path))
      record_open(build, part.path);
    const bool writable = part.writable && !block.read_only;
    auto part_fd = open_input(part.path, role, writable);
    if (!part_fd)
      return std::unexpected(part_fd.error());
    if (proc_fd_number(part.path))
      component_fds.push_back(*part_fd);
    if (block.lock) {
      if (auto locked = lock(*part_fd, writable, role); !locked)
        return std::unexpected(locked.error());
    }
    struct stat info {};
    if (fstat(*part_fd, &info) != 0 || !S_ISREG(info.st_mode))
      return std::unexpected(failure(role + ": not a regular file"));
    if (i == 0) {
      char signature[8] = {};
      if (pread(*part_fd, signature, sizeof(signature), 512) != sizeof(signature) ||
          std::memcmp(signature, "EFI PART", sizeof(signature)) != 0)
        return std::unexpected(failure(role + ": no GPT header at offset 512"));
    }
    if (!proc_fd_number(part.path))
      ::close(*part_fd);
  }
  return "composite, " + std::to_string(composite->components.size()) + " components, " +
         std::to_string(composite->length) + " bytes";
}

Expected<int> check_control_socket(const std::string& path) {
  if (!proc_fd_number(path)) {
    // A plain path: crosvm binds the socket itself.
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.size() >= sizeof(address.sun_path))
      return std::unexpected(failure("socket " + path + ": path too long"));
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0 || ::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0 ||
        ::listen(fd, 8) != 0)
      return std::unexpected(failure("socket " + path + ": " + std::strerror(errno)));
    return fd;
  }
  auto fd = inherited_fd(path, "socket");
  if (!fd)
    return fd;
  // UnixSeqpacketListener::bind on /proc/self/fd/N: N must already be a listening seqpacket
  // socket.
  int type = 0;
  int accepting = 0;
  socklen_t size = sizeof(int);
  if (getsockopt(*fd, SOL_SOCKET, SO_TYPE, &type, &size) != 0 || type != SOCK_SEQPACKET)
    return std::unexpected(failure("socket " + path + ": not a SOCK_SEQPACKET socket"));
  size = sizeof(int);
  if (getsockopt(*fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &size) != 0 || accepting != 1)
    return std::unexpected(failure("socket " + path + ": not listening"));
  return fd;
}

Expected<int> console_fd(const RunArgs& args) {
  if (args.serials.empty())
    return STDOUT_FILENO;  // crosvm's default: serial 1 on stdout
  const SerialOption* chosen = &args.serials.front();
  for (const auto& serial : args.serials) {
    if (serial.console)
      chosen = &serial;
  }
  if (chosen->type == "stdout")
    return STDOUT_FILENO;
  if (chosen->type != "file")
    return -1;  // sink, syslog, sockets: the console goes nowhere we model
  if (proc_fd_number(*chosen->path))
    return open_input(*chosen->path, "serial", true);
  const int fd = ::open(chosen->path->c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return std::unexpected(failure("serial " + *chosen->path + ": " + std::strerror(errno)));
  return fd;
}

}  // namespace

std::set<int> inherited_fds() {
  std::set<int> fds;
  DIR* dir = opendir("/proc/self/fd");
  if (!dir)
    return fds;
  const int own = dirfd(dir);
  while (const dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.')
      continue;
    const int fd = std::atoi(entry->d_name);
    if (fd > 2 && fd != own)
      fds.insert(fd);
  }
  closedir(dir);
  return fds;
}

// A --net tap-fd: crosvm takes the fd as a TAP (Tap::from_raw_descriptor reads its flags with
// TUNGETIFF and needs IFF_VNET_HDR for its offloads). One step further than crosvm: the TAP
// must live in a network namespace that is neither this process's nor the host's (crosvisor
// makes every TAP inside its network's namespace).
Expected<std::string> check_net(const NetOption& net, std::size_t index,
                                const std::set<int>& inherited) {
  const std::string role = "net " + std::to_string(index);
  if (!net.tap_fd)
    return std::unexpected(failure(role + ": this stand-in takes a TAP only as an inherited fd"));
  const int fd = *net.tap_fd;
  if (inherited.count(fd) == 0)
    return std::unexpected(failure(role + ": tap-fd " + std::to_string(fd) + " is not inherited"));
  ifreq request{};
  if (::ioctl(fd, TUNGETIFF, &request) != 0)
    return std::unexpected(
        failure(role + ": fd " + std::to_string(fd) + " is not a TAP: " + std::strerror(errno)));
  const auto flags = static_cast<unsigned short>(request.ifr_flags);
  if (!(flags & IFF_TAP) || !(flags & IFF_NO_PI) || !(flags & IFF_VNET_HDR))
    return std::unexpected(failure(role + ": fd " + std::to_string(fd) +
                                   " is not a TAP with IFF_NO_PI and IFF_VNET_HDR"));
  const int space = ::ioctl(fd, TUNGETDEVNETNS);
  // A confined VMM (no CAP_NET_ADMIN) may not ask; crosvm never does. The supervisor's own
  // tests check the namespace of a confined VMM's TAPs from outside.
  if (space < 0 && errno == EPERM)
    return role + ": tap " + request.ifr_name + " (fd " + std::to_string(fd) +
           ") in a namespace this confined VMM may not ask about" +
           (net.mac ? ", mac " + *net.mac : "");
  if (space < 0)
    return std::unexpected(failure(role + ": TUNGETDEVNETNS: " + std::strerror(errno)));
  struct stat tap_ns {
  }, own_ns{}, host_ns{};
  const bool known = ::fstat(space, &tap_ns) == 0 && ::stat("/proc/self/ns/net", &own_ns) == 0;
  ::close(space);
  if (!known)
    return std::unexpected(failure(role + ": cannot tell the TAP's network namespace"));
  if (tap_ns.st_ino == own_ns.st_ino ||
      (::stat("/proc/1/ns/net", &host_ns) == 0 && tap_ns.st_ino == host_ns.st_ino))
    return std::unexpected(failure(role + ": the TAP " + request.ifr_name +
                                   " is in the host's network namespace, not a network's own"));
  return role + ": tap " + request.ifr_name + " (fd " + std::to_string(fd) + ") in net:[" +
         std::to_string(tap_ns.st_ino) + "]" + (net.mac ? ", mac " + *net.mac : "");
}

// A supervisor that lets its VMM outlive it hands the VMM its CID's reservation and names the
// fd in CROSVISOR_CID_RESERVATION_FD (crosvm ignores both). It must be the listening socket
// bound to the reservation of exactly this VM's CID ("@<scope>/cid/<N>", vsock/cid_locks.hpp).
Expected<std::optional<int>> check_cid_reservation(const RunArgs& args,
                                                   const std::set<int>& inherited) {
  const char* named = std::getenv("CROSVISOR_CID_RESERVATION_FD");
  if (named == nullptr)
    return std::optional<int>();
  const int fd = std::atoi(named);
  if (inherited.count(fd) == 0)
    return std::unexpected(
        failure("CROSVISOR_CID_RESERVATION_FD=" + std::string(named) + " is not an inherited fd"));
  if (!args.cid)
    return std::unexpected(failure("a CID reservation was inherited, but no --vsock cid given"));
  sockaddr_un address{};
  socklen_t length = sizeof(address);
  int listening = 0;
  socklen_t size = sizeof(listening);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0 ||
      address.sun_family != AF_UNIX || address.sun_path[0] != '\0' ||
      ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size) != 0 || !listening)
    return std::unexpected(failure("CROSVISOR_CID_RESERVATION_FD " + std::to_string(fd) +
                                   " is not a listening abstract Unix socket"));
  const std::string name(address.sun_path + 1, length - offsetof(sockaddr_un, sun_path) - 1);
  const std::string expected = "/cid/" + std::to_string(*args.cid);
  if (!name.ends_with(expected))
    return std::unexpected(failure("the inherited CID reservation is @" + name + ", not cid " +
                                   std::to_string(*args.cid) + "'s"));
  return std::optional<int>(fd);
}

Expected<CheckedInputs> check_inputs(const RunArgs& args, const std::set<int>& inherited,
                                     const Build& build) {
  CheckedInputs inputs;
  for (const auto& [path, role] :
       {std::pair{args.kernel, "kernel"}, {args.bios, "bios"}, {args.initrd, "initrd"}}) {
    if (path) {
      if (auto checked = check_boot_file(*path, role); !checked)
        return std::unexpected(checked.error());
    }
  }
  std::vector<int> named = named_fds(args);
  for (std::size_t i = 0; i < args.blocks.size(); ++i) {
    const auto& block = args.blocks[i];
    auto fd = open_input(block.path, "block", !block.read_only);
    if (!fd)
      return std::unexpected(fd.error());
    const std::string role = "block " + std::to_string(i);
    if (block.lock) {
      if (auto locked = lock(*fd, !block.read_only, role + " " + block.path); !locked)
        return std::unexpected(locked.error());
    }
    char magic[15] = {};
    std::string description;
    if (build.composite_disk && pread(*fd, magic, sizeof(magic), 0) == sizeof(magic) &&
        std::memcmp(magic, "composite_disk\x1d", sizeof(magic)) == 0) {
      auto composite = check_composite(*fd, block, named, build);
      if (!composite)
        return std::unexpected(composite.error());
      description = *composite;
    } else {
      auto format = probe(*fd, role, build);
      if (!format)
        return std::unexpected(format.error());
      description = *format;
      // Without the composite-disk feature a composite file is just a very small raw disk.
      struct stat info {};
      if (!build.composite_disk && std::memcmp(magic, "composite_disk\x1d", sizeof(magic)) == 0 &&
          fstat(*fd, &info) == 0)
        description += " (" + std::to_string(info.st_size) + " bytes)";
      if (description == "raw" && !block.read_only && inputs.first_writable_raw < 0)
        inputs.first_writable_raw = *fd;
    }
    inputs.descriptions.push_back("block " + std::to_string(i) + ": " + block.path + " " +
                                  description + (block.read_only ? ", read-only" : ", read-write"));
  }
  if (!args.socket)
    return std::unexpected(failure("no --socket: this stand-in is always driven through one"));
  auto control = check_control_socket(*args.socket);
  if (!control)
    return std::unexpected(control.error());
  inputs.control = *control;
  auto console = console_fd(args);
  if (!console)
    return std::unexpected(console.error());
  inputs.console = *console;
  for (const auto& serial : args.serials) {
    if (!serial.input)
      continue;
    // crosvm opens it for reading with open_file_or_duplicate (devices/src/serial_device.rs).
    auto input = open_input(*serial.input, "serial input", false);
    if (!input)
      return std::unexpected(input.error());
    if (serial.console || args.serials.size() == 1)
      inputs.console_input = *input;
  }

  for (std::size_t i = 0; i < args.nets.size(); ++i) {
    auto net = check_net(args.nets[i], i, inherited);
    if (!net)
      return std::unexpected(net.error());
    inputs.descriptions.push_back(*net);
  }

  auto reservation = check_cid_reservation(args, inherited);
  if (!reservation)
    return std::unexpected(reservation.error());
  if (*reservation)
    named.push_back(**reservation);
  for (const int fd : inherited) {
    if (std::find(named.begin(), named.end(), fd) == named.end())
      return std::unexpected(
          failure("fd " + std::to_string(fd) + " was inherited but is named nowhere (a leak)"));
  }
  return inputs;
}

}  // namespace crosvisor::fake_crosvm
