#include "vmm/crosvm/crosvm_features.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <map>
#include <mutex>
#include <tuple>

#include "process/launch.hpp"

namespace crosvisor::vmm::crosvm {
namespace {

using Key = std::tuple<std::string, ino_t, std::int64_t>;

Expected<bool> ask(const std::filesystem::path& binary) {
  process::LaunchRequest request;
  request.binary = binary;
  request.args = {"create_composite", "--help"};
  for (int fd = 0; fd <= 2; ++fd)
    request.fds.set(fd, UniqueFd(::open("/dev/null", O_RDWR | O_CLOEXEC)));
  auto child = process::spawn_child(request);
  if (!child)
    return std::unexpected(child.error());
  siginfo_t info{};
  while (::waitid(P_PIDFD, static_cast<id_t>(child->pidfd.get()), &info, WEXITED) != 0 &&
         errno == EINTR) {
  }
  if (info.si_code == CLD_EXITED && info.si_status == 35)
    return false;
  // 0 with the feature; anything else is not the answer we look for, and not a reason to refuse.
  return true;
}

}  // namespace

Expected<bool> supports_composite_disks(const std::filesystem::path& binary) {
  auto resolved = process::resolve_binary(binary);
  if (!resolved)
    return std::unexpected(resolved.error());
  struct stat info {};
  if (::stat(resolved->c_str(), &info) != 0)
    return std::unexpected(errno_error(ErrorKind::not_found, resolved->string(), errno));
  const Key key{resolved->string(), info.st_ino, info.st_mtim.tv_sec};
  static std::mutex mutex;
  static std::map<Key, bool> known;
  {
    std::lock_guard lock(mutex);
    if (auto it = known.find(key); it != known.end())
      return it->second;
  }
  auto answer = ask(*resolved);
  if (!answer)
    return answer;
  std::lock_guard lock(mutex);
  known[key] = *answer;
  return *answer;
}

}  // namespace crosvisor::vmm::crosvm
