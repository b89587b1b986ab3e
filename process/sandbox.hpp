// A VMM's confinement (docs/sandbox.md), after Firecracker's jailer and libvirt's QEMU: it runs
// as an unprivileged user with no capabilities and no_new_privs, in mount, pid, IPC and UTS
// namespaces of its own, under a root that holds only what it cannot get through its fds (its
// program and libraries in /usr, a few device nodes, its run directory, a /proc of its own pid
// namespace and an empty /tmp). Planned here in plain C++, as steps with every path built
// beforehand; carried out by launch.cpp between clone and exec, where nothing may allocate.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace crosvisor::process {

struct Sandbox {
  // Who the VMM runs as. uid 0 keeps root's ids (a VM whose configuration asks for root), but
  // never its capabilities.
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups (the user's, from the group database)
  // Its own namespaces and root (needs root: CAP_SYS_ADMIN). Without them, only the ids,
  // capabilities, no_new_privs and rlimits apply.
  bool namespaces = true;
  // An empty directory the new root is mounted on, in the VMM's own mount namespace only (the
  // host sees it empty).
  std::filesystem::path mount_point;
  std::vector<std::filesystem::path> read_only;  // host directories or files, read-only
  std::vector<std::filesystem::path> writable;   // host directories, read-write (its run dir)
  std::vector<std::filesystem::path> devices;    // device nodes, bound as they are
  std::string hostname = "crosvisor-vmm";
  // A network namespace of its own too (only loopback, down): for a VMM that needs none of the
  // host's network (its TAPs come as fds; a gdb stub on the host's loopback needs the host's).
  bool own_network = false;
  // The program, opened beforehand: it is run through this fd (execveat), wherever it lives.
  bool exec_through_fd = true;
};

// One step towards the new root, relative to the mount point ("" is the root itself).
struct RootStep {
  enum class Kind {
    mount_root,  // a tmpfs on the mount point
    mount_tmp,   // a small tmpfs for anyone (1777) at target
    mount_proc,  // proc of the VMM's own pid namespace at target
    make_dir,    // target
    make_file,   // target: an empty file to bind a file or device node on
    symlink,     // target -> source (the host's own symlink, as /lib -> usr/lib)
    bind_read_only,
    bind_writable,
    bind_device,
  };
  Kind kind;
  std::string source;  // a host path
  std::string target;  // under the mount point, absolute
};

// What the planner needs to know of the host: whether each path is a directory, a file or a
// device, or a symlink (and to what). Read by host_layout() in the parent.
struct HostEntry {
  enum class Type { missing, directory, file, device, symlink };
  Type type = Type::missing;
  std::string link_target;
};
using HostLookup = HostEntry (*)(const std::filesystem::path&);
HostEntry host_entry(const std::filesystem::path& path);

// The steps for `sandbox`: the root, its /tmp and /proc, every parent directory of what is made
// visible (once each, in order), host symlinks reproduced rather than followed (Debian's merged
// /usr: /lib, /bin, /sbin, /lib64 are links into /usr), missing host paths skipped.
std::vector<RootStep> plan_root(const Sandbox& sandbox, HostLookup lookup = host_entry);

// What a VMM sees by default: /usr (its program, libraries and data files, such as QEMU's
// ROMs), the top-level links into it and the dynamic loader's cache.
std::vector<std::filesystem::path> default_read_only();
// /dev/null, zero, full, random and urandom; /dev/kvm when there is one.
std::vector<std::filesystem::path> default_devices();

}  // namespace crosvisor::process
