// A debuggable VM's console log: every byte the guest writes, appended to <name>.log after a
// marker line per boot (a restarted fleet member keeps the crashed boot's lines), and rotated to
// <name>.log.1 when it reaches its cap, so a chatty guest cannot fill the disk. Owned by the VM's
// owner (a root daemon hands the file to the user whose VM it is). Written on the reactor thread.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "core/unique_fd.hpp"
#include "crosvisor/error.hpp"

namespace crosvisor::vmm {

class ConsoleLog {
 public:
  // Opens (creating) the log and appends the boot marker. The directory is made 0711 (its
  // entries cannot be listed or replaced by others); the file is 0600, owned by `owner` when the
  // daemon may give it away.
  static Expected<ConsoleLog> open(const std::filesystem::path& path, std::uint64_t max_bytes,
                                   std::optional<uid_t> owner, std::string_view boot_marker);

  // Appends; a log that cannot be written (disk full) stops logging, never the VM.
  void write(std::string_view bytes);
  const std::filesystem::path& path() const { return path_; }
  bool open() const { return fd_.valid(); }

 private:
  ConsoleLog(std::filesystem::path path, UniqueFd fd, std::uint64_t size, std::uint64_t max_bytes,
             std::optional<uid_t> owner);
  void rotate();

  std::filesystem::path path_;
  UniqueFd fd_;
  std::uint64_t size_ = 0;
  std::uint64_t max_bytes_ = 0;
  std::optional<uid_t> owner_;
};

// "--- crosvisor: NAME booted at 2026-12-01T19:40:43Z ---"
std::string boot_marker(std::string_view vm_name);
// "--- crosvisor: NAME taken over by a new crosvisord at ... ---": what the guest printed while
// no supervisor read follows it.
std::string takeover_marker(std::string_view vm_name);

}  // namespace crosvisor::vmm
