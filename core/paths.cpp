#include "crosvisor/paths.hpp"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace crosvisor {

Expected<void> check_private_dir(const std::filesystem::path& dir) {
  struct stat info {};
  if (::lstat(dir.c_str(), &info) != 0)
    return std::unexpected(errno_error(ErrorKind::not_found, dir.string(), errno));
  if (S_ISLNK(info.st_mode))
    return make_error(ErrorKind::permission, dir.string() + " is a symbolic link");
  if (!S_ISDIR(info.st_mode))
    return make_error(ErrorKind::permission, dir.string() + " is not a directory");
  if (info.st_uid != ::geteuid() && info.st_uid != 0) {
    return make_error(ErrorKind::permission, dir.string() + " belongs to uid " +
                                                 std::to_string(info.st_uid) + ", not to you");
  }
  if ((info.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return make_error(ErrorKind::permission, dir.string() +
                                                 " may be written by other users (mode " +
                                                 std::to_string((info.st_mode >> 6) & 7) +
                                                 std::to_string((info.st_mode >> 3) & 7) +
                                                 std::to_string(info.st_mode & 7) + ")");
  }
  return {};
}

Expected<std::filesystem::path> user_runtime_dir() {
  if (::geteuid() == 0)
    return std::filesystem::path("/run/crosvisor");
  std::string why;
  if (const char* runtime = std::getenv("XDG_RUNTIME_DIR"); runtime && *runtime) {
    auto checked = check_private_dir(runtime);
    if (checked)
      return std::filesystem::path(runtime) / "crosvisor";
    why = "XDG_RUNTIME_DIR: " + checked.error().message;
  } else {
    why = "XDG_RUNTIME_DIR is not set";
  }
  const std::filesystem::path systemd_dir = "/run/user/" + std::to_string(::geteuid());
  if (check_private_dir(systemd_dir))
    return systemd_dir / "crosvisor";
  return make_error(ErrorKind::not_found,
                    "no private runtime directory for uid " + std::to_string(::geteuid()) + " (" +
                        why + ", and " + systemd_dir.string() +
                        " is not yours): set XDG_RUNTIME_DIR to a directory only you can write, "
                        "or name a socket with --socket or CROSVISOR_SOCKET");
}

Expected<std::filesystem::path> user_control_socket() {
  auto dir = user_runtime_dir();
  if (!dir)
    return std::unexpected(dir.error());
  return *dir / "control.sock";
}

Expected<std::filesystem::path> user_state_dir() {
  if (const char* chosen = std::getenv("CROSVISOR_STATE_DIR"); chosen && *chosen)
    return std::filesystem::path(chosen);
  if (::geteuid() == 0)
    return std::filesystem::path("/var/lib/crosvisor");
  if (const char* state = std::getenv("XDG_STATE_HOME"); state && *state && state[0] == '/')
    return std::filesystem::path(state) / "crosvisor";
  if (const char* home = std::getenv("HOME"); home && *home && home[0] == '/')
    return std::filesystem::path(home) / ".local/state/crosvisor";
  return make_error(ErrorKind::not_found,
                    "no state directory for uid " + std::to_string(::geteuid()) +
                        " (neither XDG_STATE_HOME nor HOME is set): set CROSVISOR_STATE_DIR or "
                        "give crosvisord --state-dir");
}

std::filesystem::path system_control_socket() {
  if (const char* elsewhere = std::getenv("CROSVISOR_SYSTEM_SOCKET"); elsewhere && *elsewhere)
    return elsewhere;
  return "/run/crosvisor/control.sock";
}

std::filesystem::path default_runtime_dir() {
  if (auto dir = user_runtime_dir())
    return *dir;
  std::string pattern = (std::filesystem::temp_directory_path() / "crosvisor-XXXXXX").string();
  if (::mkdtemp(pattern.data()) != nullptr)
    return pattern;
  return std::filesystem::temp_directory_path();
}

}  // namespace crosvisor
