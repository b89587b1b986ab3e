#include "process/open_as.hpp"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <span>

#include "process/accounts.hpp"
#include "process/fd_passing.hpp"

namespace crosvisor::process {
namespace {

// The user's supplementary groups, as the group database lists them now.
std::vector<gid_t> groups_of(uid_t uid, gid_t gid) {
  auto account = account_of(uid, gid);
  return account ? account->groups : std::vector<gid_t>{gid};
}

// In the child: only system calls from here (it is a fork of a threaded process). Raw syscalls
// for the credentials: they change the calling thread, the only one the child has.
[[noreturn]] void open_in_child(int channel, const Credentials& user,
                                const std::vector<gid_t>& groups,
                                const std::vector<const char*>& paths,
                                const std::vector<int>& flags, bool drop) {
  if (drop && (syscall(SYS_setgroups, groups.size(), groups.data()) != 0 ||
               syscall(SYS_setresgid, user.gid, user.gid, user.gid) != 0 ||
               syscall(SYS_setresuid, user.uid, user.uid, user.uid) != 0))
    _exit(2);
  for (std::size_t i = 0; i < paths.size(); ++i) {
    // Non-blocking, so that a FIFO put where an image was cannot hold the helper; only a regular
    // file or a block device is an image.
    int fd = ::open(paths[i], flags[i] | O_NONBLOCK);
    int error = fd < 0 ? errno : 0;
    struct stat info {};
    if (fd >= 0 && (::fstat(fd, &info) != 0 || !(S_ISREG(info.st_mode) || S_ISBLK(info.st_mode)))) {
      error = S_ISDIR(info.st_mode) ? EISDIR : EINVAL;
      ::close(fd);
      fd = -1;
    }
    if (fd >= 0)
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    const std::string_view answer(reinterpret_cast<const char*>(&error), sizeof(error));
    const int attached[] = {fd};
    if (!send_with_fds(channel, answer,
                       fd >= 0 ? std::span<const int>(attached) : std::span<const int>()))
      _exit(3);
    if (fd >= 0)
      ::close(fd);
  }
  _exit(0);
}

// One answer from the child: an fd, or the errno of its open; waiting at most until `deadline`
// (a file on a hung network mount must not hold a daemon's start).
Expected<UniqueFd> receive_one(int channel, const std::filesystem::path& path, uid_t uid,
                               std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  pollfd ready{channel, POLLIN, 0};
  if (left.count() <= 0 || ::poll(&ready, 1, static_cast<int>(left.count())) <= 0)
    return make_error(ErrorKind::io, "opening " + path.string() + " as uid " + std::to_string(uid) +
                                         ": the helper did not answer");
  int error = 0;
  iovec data{&error, sizeof(error)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr message{};
  message.msg_iov = &data;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof(control);
  const ssize_t n = ::recvmsg(channel, &message, MSG_CMSG_CLOEXEC);
  if (n != sizeof(error))
    return make_error(ErrorKind::io, "opening " + path.string() + " as uid " + std::to_string(uid) +
                                         ": the helper failed");
  if (error == EINVAL)
    return make_error(ErrorKind::permission, path.string() + " (as uid " + std::to_string(uid) +
                                                 "): not a regular file or block device");
  if (error != 0)
    return std::unexpected(errno_error(
        ErrorKind::permission, path.string() + " (as uid " + std::to_string(uid) + ")", error));
  const cmsghdr* header = CMSG_FIRSTHDR(&message);
  if (header == nullptr || header->cmsg_type != SCM_RIGHTS)
    return make_error(ErrorKind::io, "opening " + path.string() + ": no fd came back");
  int fd = -1;
  std::memcpy(&fd, CMSG_DATA(header), sizeof(int));
  return UniqueFd(fd);
}

}  // namespace

Expected<std::vector<Expected<UniqueFd>>> open_as(Credentials user,
                                                  const std::vector<FileToOpen>& files) {
  const bool root = ::geteuid() == 0;
  if (!root && (user.uid != ::geteuid() || user.gid != ::getegid()))
    return make_error(ErrorKind::permission,
                      "only root can open files as uid " + std::to_string(user.uid));
  // Everything the child needs, made before the fork.
  const std::vector<gid_t> groups = root ? groups_of(user.uid, user.gid) : std::vector<gid_t>{};
  std::vector<const char*> paths;
  std::vector<int> flags;
  for (const auto& file : files) {
    paths.push_back(file.path.c_str());
    flags.push_back((file.writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOCTTY);
  }
  int ends[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends) != 0)
    return std::unexpected(errno_error(ErrorKind::io, "socketpair", errno));
  UniqueFd ours(ends[0]);
  UniqueFd theirs(ends[1]);
  const pid_t child = ::fork();
  if (child < 0)
    return std::unexpected(errno_error(ErrorKind::io, "fork", errno));
  if (child == 0)
    open_in_child(theirs.get(), user, groups, paths, flags, root);
  theirs.reset();
  std::vector<Expected<UniqueFd>> opened;
  const auto deadline = std::chrono::steady_clock::now() + kOpenAsDeadline;
  bool answered = true;
  for (const auto& file : files) {
    opened.push_back(receive_one(ours.get(), file.path, user.uid, deadline));
    answered = answered && (opened.back() || opened.back().error().kind == ErrorKind::permission);
  }
  ours.reset();
  if (!answered)
    ::kill(child, SIGKILL);  // stuck in an open: it is not waited for
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  // A helper that could not drop its rights sent nothing: every file says "did not answer" or
  // "failed"; say why instead.
  if (WIFEXITED(status) && WEXITSTATUS(status) == 2)
    return make_error(ErrorKind::permission,
                      "could not take the rights of uid " + std::to_string(user.uid));
  return opened;
}

}  // namespace crosvisor::process
