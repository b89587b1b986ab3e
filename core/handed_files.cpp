#include "core/handed_files.hpp"

#include <fcntl.h>

#include <charconv>
#include <string>

namespace crosvisor {

std::optional<int> handed_fd_number(const std::filesystem::path& path) {
  static constexpr std::string_view kPrefix = "/proc/self/fd/";
  const std::string& text = path.native();
  if (text.size() <= kPrefix.size() || text.compare(0, kPrefix.size(), kPrefix) != 0)
    return std::nullopt;
  int number = -1;
  const char* first = text.data() + kPrefix.size();
  const char* last = text.data() + text.size();
  const auto [end, error] = std::from_chars(first, last, number);
  if (error != std::errc() || end != last || number < 0)
    return std::nullopt;
  return number;
}

Expected<UniqueFd> open_or_take(const std::filesystem::path& path, int flags,
                                std::string_view role) {
  const std::string what = std::string(role) + " " + path.string();
  const auto handed = handed_fd_number(path);
  if (!handed) {
    UniqueFd fd(::open(path.c_str(), flags | O_CLOEXEC));
    if (!fd)
      return std::unexpected(errno_error(ErrorKind::not_found, what, errno));
    return fd;
  }
  const int mode = fcntl(*handed, F_GETFL);
  if (mode < 0)
    return std::unexpected(errno_error(ErrorKind::not_found, what + " (a handed fd)", errno));
  if (mode & O_PATH) {
    return make_error(ErrorKind::protocol,
                      what + ": the handed fd is an O_PATH fd, which grants no access");
  }
  const bool wants_write = (flags & O_ACCMODE) != O_RDONLY;
  if (wants_write && (mode & O_ACCMODE) == O_RDONLY) {
    return make_error(ErrorKind::protocol,
                      what + ": the handed fd is read-only, and this use needs writing");
  }
  if ((mode & O_ACCMODE) == O_WRONLY)
    return make_error(ErrorKind::protocol, what + ": the handed fd cannot be read");
  UniqueFd copy(fcntl(*handed, F_DUPFD_CLOEXEC, 3));
  if (!copy)
    return std::unexpected(errno_error(ErrorKind::io, what, errno));
  return copy;
}

}  // namespace crosvisor
