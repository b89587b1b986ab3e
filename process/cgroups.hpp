// Each VMM in a cgroup of its own (docs/sandbox.md): its memory, CPU and pids limits, its
// accounting, an OOM kill told apart from any other SIGKILL, and the whole group killed as the
// last stop step. cgroup v2 with the controllers delegated to crosvisord (systemd's
// Delegate=yes), or the v1 hybrid layout (one hierarchy per controller) where v2 has none.
// Plain file work on a cgroupfs: the tests lay out a directory tree like one.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "crosvisor/error.hpp"

namespace crosvisor::process {

struct CgroupLimits {
  std::optional<std::uint64_t> memory_bytes;
  std::optional<std::uint32_t> cpu_percent;  // of one CPU: 150 is one and a half
  std::optional<std::uint32_t> pids;
};

// What a cgroup counted (missing where the layout does not count it).
struct CgroupUsage {
  std::optional<std::uint64_t> cpu_usec;
  std::optional<std::uint64_t> memory_bytes;
  std::optional<std::uint64_t> pids;
  std::optional<std::uint64_t> oom_kills;
  std::optional<std::uint64_t> memory_limit_bytes;  // none: unlimited
};

enum class CgroupVersion { v1, v2 };

// One hierarchy crosvisor may make cgroups in: a directory and the controllers it has there.
// The directory, under crosvisord's own cgroup, that holds the VMM cgroups of the daemon of
// `state_dir`: named after it, so that the next daemon of that state finds the ones it takes over
// (and the soak, bench/soak_bench.cpp, the ones a trial left).
std::string cgroup_base_name(const std::filesystem::path& state_dir);

struct CgroupBase {
  std::filesystem::path dir;
  std::vector<std::string> controllers;  // memory, cpu, pids (v1: the hierarchy's own)
};

// A VM's cgroup: one directory (v2) or one per controller (v1).
class VmCgroup {
 public:
  VmCgroup(CgroupVersion version, std::vector<CgroupBase> dirs)
      : version_(version), dirs_(std::move(dirs)) {}
  CgroupVersion version() const { return version_; }
  // The cgroup.procs file of each directory: the VMM writes "0" into each before exec.
  std::vector<std::string> procs_files() const;
  CgroupUsage usage() const;
  // Every process in it SIGKILLed (cgroup.kill where there is one).
  void kill_all() const;
  // Its directories removed (once empty); errors are the caller's to log.
  Expected<void> remove() const;
  const std::vector<CgroupBase>& dirs() const { return dirs_; }

 private:
  CgroupVersion version_;
  std::vector<CgroupBase> dirs_;
};

// Where crosvisord may make VM cgroups, found once at start.
class CgroupHost {
 public:
  // From this process's /proc/self/cgroup and /proc/self/mountinfo (texts), with `fs_root`
  // prefixed to every mount point (a test's tree; "/" on a real host). v2 is used when the
  // process's own cgroup there offers memory, cpu and pids; else v1 when each of memory, cpu and
  // pids has a hierarchy of its own. Otherwise an error that says why (VMs then run unlimited).
  // `name`: the directory made under the process's own cgroup for its VMs.
  static Expected<CgroupHost> find(std::string_view proc_self_cgroup, std::string_view mountinfo,
                                   const std::filesystem::path& fs_root, const std::string& name);
  // The same, of this process on this host.
  static Expected<CgroupHost> of_this_process(const std::string& name);

  CgroupVersion version() const { return version_; }
  const std::vector<CgroupBase>& bases() const { return bases_; }

  // Makes `vm`'s cgroup with `limits` written (a limit its layout cannot set is an error).
  Expected<VmCgroup> make(const std::string& vm, const CgroupLimits& limits) const;
  // `vm`'s cgroup as made before (by an earlier crosvisord, for a VMM taken over).
  VmCgroup existing(const std::string& vm) const;
  // Removes the VM cgroups no process is in any more (a VMM that died while no crosvisord
  // ran): a populated one cannot be removed, so a running VMM's stays. How many went.
  std::size_t remove_empty() const;
  // The VM cgroups a restarting crosvisord does not take over (`kept`: those it does): its
  // predecessor's VMs that were not to outlive it, whose VMMs may still be on their way out
  // (the parent-death signal) or, if they escaped it, would run on unsupervised. Every process
  // in them is killed and each is removed once empty (waited for up to `grace`). How many went.
  std::size_t remove_orphans(const std::set<std::string>& kept,
                             std::chrono::milliseconds grace) const;
  // Its own directories, if no VM cgroup is left in them.
  void remove_bases() const;
  // What crosvisord processes killed without a chance to clean up left beside its own
  // directories (those whose names start as its own, up to the last '-'): VM cgroups no process
  // has been in for `age` (one that is being started is joined within milliseconds), and then
  // such directories left empty. How many went.
  std::size_t sweep_stale(std::chrono::seconds age) const;

 private:
  CgroupHost(CgroupVersion version, std::vector<CgroupBase> bases)
      : version_(version), bases_(std::move(bases)) {}
  // A base made again (another daemon's sweep took it while it was empty): v2 needs its
  // controllers enabled for its children once more.
  Expected<void> ensure_base(const CgroupBase& base) const;
  CgroupVersion version_;
  std::vector<CgroupBase> bases_;
};

}  // namespace crosvisor::process
