#include "vmm/dump_files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>

namespace crosvisor::vmm {
namespace {

std::string timestamp(std::chrono::system_clock::time_point now) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y%m%dT%H%M%SZ", &utc);
  return text;
}

// NAME-<timestamp>[.N].core: the name's own dumps, not those of a VM whose name starts with it.
bool is_dump_of(const std::string& file, const std::string& vm) {
  const std::string prefix = vm + "-";
  if (file.rfind(prefix, 0) != 0 || !file.ends_with(".core"))
    return false;
  const std::string rest = file.substr(prefix.size());
  return rest.size() >= 16 && std::all_of(rest.begin(), rest.begin() + 8, ::isdigit) &&
         rest[8] == 'T';
}

}  // namespace

std::vector<std::filesystem::path> dumps_of(const std::filesystem::path& dir,
                                            const std::string& vm) {
  std::vector<std::filesystem::path> found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.is_regular_file(ec) && is_dump_of(entry.path().filename().string(), vm))
      found.push_back(entry.path());
  }
  // By time, then by the suffix a second dump within the same second gets (none is 0).
  const auto order = [&](const std::filesystem::path& path) {
    const std::string stem = path.stem().string();  // NAME-<timestamp>[.N]
    const auto dot = stem.find('.', vm.size() + 1);
    const int n = dot == std::string::npos ? 0 : std::atoi(stem.c_str() + dot + 1);
    return std::pair(stem.substr(0, dot), n);
  };
  std::sort(found.begin(), found.end(),
            [&](const auto& a, const auto& b) { return order(a) < order(b); });
  return found;
}

Expected<DumpFile> create_dump_file(const std::filesystem::path& dir, const std::string& vm,
                                    std::optional<uid_t> owner, std::size_t keep,
                                    std::chrono::system_clock::time_point now) {
  std::error_code ec;
  if (std::filesystem::create_directories(dir, ec))
    ::chmod(dir.c_str(), 0711);  // the owner reaches its own 0600 dumps, nobody lists them
  if (ec)
    return make_error(ErrorKind::io, "create " + dir.string() + ": " + ec.message());
  if (keep == 0)
    return make_error(ErrorKind::limit, "memory dumps are turned off (0 kept per VM)");
  auto old = dumps_of(dir, vm);
  while (old.size() >= keep) {
    std::filesystem::remove(old.front(), ec);
    old.erase(old.begin());
  }
  const std::string stem = vm + "-" + timestamp(now);
  for (int n = 0; n < 100; ++n) {
    const auto path = dir / (stem + (n == 0 ? "" : "." + std::to_string(n)) + ".core");
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd && errno == EEXIST)
      continue;
    if (!fd)
      return std::unexpected(errno_error(ErrorKind::io, "memory dump " + path.string(), errno));
    // A root daemon gives the dump to the VM's owner, who reads it without the daemon.
    if (owner && ::geteuid() == 0 && *owner != 0 &&
        ::fchown(fd.get(), *owner, static_cast<gid_t>(-1)) != 0) {
      // It stays the daemon's.
    }
    return DumpFile{std::move(fd), path};
  }
  return make_error(ErrorKind::conflict, "memory dump " + stem + ": 100 of them in one second");
}

}  // namespace crosvisor::vmm
