#include "disk/image_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "core/handed_files.hpp"

namespace crosvisor::disk {
namespace {

std::string_view kind_of(mode_t mode) {
  if (S_ISDIR(mode))
    return "a directory";
  if (S_ISFIFO(mode))
    return "a FIFO";
  if (S_ISSOCK(mode))
    return "a socket";
  if (S_ISCHR(mode))
    return "a character device";
  if (S_ISBLK(mode))
    return "a block device";
  return "not a regular file";
}

Expected<void> write_all(int fd, std::string_view bytes, const std::filesystem::path& path) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return std::unexpected(errno_error(ErrorKind::io, "write " + path.string(), errno));
    done += static_cast<std::size_t>(n);
  }
  return {};
}

}  // namespace

Expected<UniqueFd> open_image(const std::filesystem::path& path, bool writable,
                              std::string_view role) {
  // O_NONBLOCK: opening a FIFO must not hang; it is rejected by image_size right after.
  auto fd = open_or_take(path, (writable ? O_RDWR : O_RDONLY) | O_NONBLOCK | O_NOCTTY, role);
  if (!fd)
    return fd;
  // A handed fd's file description is the client's too: leave its flags alone.
  if (!handed_fd_number(path)) {
    const int flags = fcntl(fd->get(), F_GETFL);
    fcntl(fd->get(), F_SETFL, flags & ~O_NONBLOCK);
  }
  return fd;
}

Expected<std::uint64_t> image_size(int fd, std::string_view what) {
  struct stat info {};
  if (fstat(fd, &info) != 0)
    return std::unexpected(errno_error(ErrorKind::io, what, errno));
  if (!S_ISREG(info.st_mode)) {
    return make_error(
        ErrorKind::invalid_image,
        std::string(what) + " is " + std::string(kind_of(info.st_mode)) + ", not a regular file");
  }
  if (info.st_size == 0)
    return make_error(ErrorKind::invalid_image, std::string(what) + " is empty");
  return static_cast<std::uint64_t>(info.st_size);
}

Expected<OpenedImage> open_sized_image(const std::filesystem::path& path, bool writable,
                                       std::string_view role) {
  auto fd = open_image(path, writable, role);
  if (!fd)
    return std::unexpected(fd.error());
  auto size = image_size(fd->get(), std::string(role) + " " + path.string());
  if (!size)
    return std::unexpected(size.error());
  return OpenedImage{std::move(*fd), *size};
}

Expected<void> check_raw_image(int fd, std::string_view what) {
  unsigned char head[16] = {};
  const ssize_t n = ::pread(fd, head, sizeof(head), 0);
  if (n < 0)
    return std::unexpected(errno_error(ErrorKind::io, std::string(what), errno));
  const auto starts = [&](std::initializer_list<unsigned char> magic) {
    return static_cast<std::size_t>(n) >= magic.size() &&
           std::equal(magic.begin(), magic.end(), head);
  };
  const char* format = nullptr;
  if (starts({'c', 'o', 'm', 'p', 'o', 's', 'i', 't', 'e', '_', 'd', 'i', 's', 'k', 0x1d}))
    format = "a composite disk description";
  else if (starts({'Q', 'F', 'I', 0xfb}))
    format = "a qcow2 image";
  else if (starts({0x3a, 0xff, 0x26, 0xed}))
    format = "an Android sparse image";
  else if (starts({0x28, 0xb5, 0x2f, 0xfd}))
    format = "a zstd-compressed image";
  if (format == nullptr)
    return {};
  return make_error(ErrorKind::invalid_image,
                    std::string(what) + " starts like " + format +
                        ": disks are used as raw images only, and a VMM that probes formats "
                        "would follow the host paths such an image names; refused");
}

Expected<OpenedImage> open_disk_image(const std::filesystem::path& path, bool writable,
                                      std::string_view role) {
  auto image = open_sized_image(path, writable, role);
  if (!image)
    return image;
  if (auto raw = check_raw_image(image->fd.get(), std::string(role) + " " + path.string()); !raw)
    return std::unexpected(raw.error());
  return image;
}

Expected<void> write_file_atomically(const std::filesystem::path& path, std::string_view bytes,
                                     std::uint64_t size) {
  std::string temp = path.string() + ".tmp-XXXXXX";
  UniqueFd fd(mkostemp(temp.data(), O_CLOEXEC));
  if (!fd)
    return std::unexpected(errno_error(ErrorKind::io, "create " + temp, errno));
  auto written = write_all(fd.get(), bytes, temp);
  if (written && size > bytes.size() && ftruncate(fd.get(), static_cast<off_t>(size)) != 0)
    written = std::unexpected(errno_error(ErrorKind::io, "truncate " + temp, errno));
  if (written && fsync(fd.get()) != 0)
    written = std::unexpected(errno_error(ErrorKind::io, "fsync " + temp, errno));
  if (written && fchmod(fd.get(), 0644) != 0)
    written = std::unexpected(errno_error(ErrorKind::io, "chmod " + temp, errno));
  if (written && ::rename(temp.c_str(), path.c_str()) != 0) {
    written = std::unexpected(errno_error(ErrorKind::io, "rename to " + path.string(), errno));
  }
  if (!written)
    ::unlink(temp.c_str());
  return written;
}

Expected<void> write_sparse_file(const std::filesystem::path& path, std::string_view prefix,
                                 std::uint64_t size) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd)
    return std::unexpected(errno_error(ErrorKind::io, "create " + path.string(), errno));
  auto written = write_all(fd.get(), prefix, path);
  if (written && ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
    written = std::unexpected(errno_error(ErrorKind::io, "truncate " + path.string(), errno));
  }
  if (!written)
    ::unlink(path.c_str());
  return written;
}

}  // namespace crosvisor::disk
