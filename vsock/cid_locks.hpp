// Host-wide CID reservations: a CID granted by one crosvisor process (a daemon, an embedding
// application) is locked with flock on a per-CID file in a shared runtime directory. The kernel
// drops the lock when the holder dies, even by SIGKILL, so no CID leaks.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>

#include "core/unique_fd.hpp"
#include "crosvisor/error.hpp"

namespace crosvisor::vsock {

class CidLocks {
 public:
  explicit CidLocks(std::filesystem::path dir) : dir_(std::move(dir)) {}

  // Creates the directory (mode 0700 when new).
  Expected<void> prepare() const;
  // The lock on `cid`, or nothing when another process holds it.
  Expected<std::optional<UniqueFd>> try_lock(std::uint32_t cid) const;
  // Gives a lock back. The file stays: one small file per CID ever used, at most one range's worth.
  void unlock(std::uint32_t cid, UniqueFd lock) const;

  std::filesystem::path lock_path(std::uint32_t cid) const;

 private:
  std::filesystem::path dir_;
};

// The last CID a supervisor granted, kept across restarts so that a restarted supervisor does
// not hand out a recent CID at once. Not fsynced: it guards against quick reuse after a
// restart, not against power loss. The file stays open and every grant rewrites one
// fixed-width record in place (one pwrite): a grant costs no new inode, which on ext4 would
// otherwise dominate a burst of grants.
class LastCidFile {
 public:
  static Expected<LastCidFile> open(const std::filesystem::path& file);
  // What the file holds, if it holds a CID.
  std::optional<std::uint32_t> load() const;
  Expected<void> save(std::uint32_t cid);

 private:
  LastCidFile(UniqueFd fd, std::filesystem::path path)
      : fd_(std::move(fd)), path_(std::move(path)) {}
  UniqueFd fd_;
  std::filesystem::path path_;
};

}  // namespace crosvisor::vsock
