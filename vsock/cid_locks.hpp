// Host-wide CID reservations, shared by every crosvisor process of every user (a root daemon,
// a user's own daemon, an embedding application): a CID is held by binding the abstract Unix
// socket "@<scope>/cid/<N>". The kernel keeps one binding per name in a network namespace and
// drops it when the holder dies, even by SIGKILL, so no CID leaks and nothing persists: unlike
// lock files in a shared directory, there is no file another user could create first, make
// unreadable or leave behind. Holding a CID takes a live process and an fd, as holding one
// through /dev/vhost-vsock does. (Abstract names are per network namespace: crosvisor processes
// of one host must share the host's.)
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "core/unique_fd.hpp"
#include "crosvisor/error.hpp"

namespace crosvisor::vsock {

inline constexpr const char* kDefaultCidScope = "crosvisor";

class CidLocks {
 public:
  // `scope` separates independent worlds (tests, benchmarks); crosvisor's own is the default.
  explicit CidLocks(std::string scope = kDefaultCidScope) : scope_(std::move(scope)) {}

  // The reservation of `cid`, or nothing when another process holds it.
  Expected<std::optional<UniqueFd>> try_lock(std::uint32_t cid) const;
  // Gives a reservation back.
  void unlock(std::uint32_t cid, UniqueFd lock) const;
  // Who holds `cid` ("pid 1234, uid 1000"), when that can be told.
  std::optional<std::string> holder(std::uint32_t cid) const;
  // The abstract socket name (without its leading NUL).
  std::string name(std::uint32_t cid) const;

 private:
  std::string scope_;
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
