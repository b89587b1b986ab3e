// Disk image files on the host: opening them with the right access, checking that they can serve
// as a disk, and writing new files so that a failure leaves nothing half-written.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string_view>

#include "core/unique_fd.hpp"
#include "crosvisor/error.hpp"

namespace crosvisor::disk {

// Opens an image read-only or read-write; errors name the role ("partition \"boot\"") and path.
Expected<UniqueFd> open_image(const std::filesystem::path& path, bool writable,
                              std::string_view role);

// The size of an opened image, which must be a non-empty regular file (not a directory, FIFO,
// socket or device). `what` names it in errors.
Expected<std::uint64_t> image_size(int fd, std::string_view what);

// An image opened for a VM, with its size: open_image and image_size together.
struct OpenedImage {
  UniqueFd fd;
  std::uint64_t size = 0;
};
Expected<OpenedImage> open_sized_image(const std::filesystem::path& path, bool writable,
                                       std::string_view role);
// open_sized_image, then check_raw_image: a disk or partition image.
Expected<OpenedImage> open_disk_image(const std::filesystem::path& path, bool writable,
                                      std::string_view role);

// Disks are raw images, always. A VMM that probes formats (crosvm does, for every --block and
// every composite component: composite, qcow2, android-sparse, zstd) would take an image that
// starts like one of those as that format, and open the host paths it names (qcow2 backing
// files, composite components) with the supervisor's rights: a guest writing such a header into
// its own raw disk could make the next start open any file of the host. The first bytes of
// every disk and partition are therefore read (pread: the fd's offset is left alone) and such an
// image is refused, naming what it looks like. `what` names the image in the error.
Expected<void> check_raw_image(int fd, std::string_view what);

// Writes `bytes` to `path` through a temporary file and a rename: `path` is either complete or
// untouched. With `size` beyond the bytes, the file is extended with zeros to it (sparsely).
Expected<void> write_file_atomically(const std::filesystem::path& path, std::string_view bytes,
                                     std::uint64_t size = 0);

// Creates `path` as a sparse file of `size` bytes whose leading bytes are `prefix`.
Expected<void> write_sparse_file(const std::filesystem::path& path, std::string_view prefix,
                                 std::uint64_t size);

}  // namespace crosvisor::disk
