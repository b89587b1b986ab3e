#include "store/record_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <string>
#include <vector>

#include "core/crc32.hpp"
#include "core/unique_fd.hpp"

namespace crosvisor::store {
namespace {

Error corrupt(const std::filesystem::path& file, const std::string& why) {
  return Error{ErrorKind::invalid_config, file.string() + ": not an intact state record: " + why};
}

Expected<void> write_all(int fd, std::string_view data, const std::filesystem::path& file) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return std::unexpected(
          errno_error(ErrorKind::io, "write " + file.string(), n < 0 ? errno : EIO));
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

Expected<void> sync_directory(const std::filesystem::path& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd || ::fsync(fd.get()) != 0)
    return std::unexpected(errno_error(ErrorKind::io, "fsync " + dir.string(), errno));
  return {};
}

std::string header(std::size_t length, std::uint32_t checksum) {
  char text[64];
  std::snprintf(text, sizeof(text), "%s %d %zu %08" PRIx32 "\n", kRecordMagic.data(),
                kRecordVersion, length, checksum);
  return text;
}

}  // namespace

Expected<void> write_record(const std::filesystem::path& file, const nlohmann::json& body) {
  static std::atomic<std::uint64_t> next{0};
  const std::string text = body.dump();
  const std::filesystem::path dir = file.parent_path();
  // Directories made for it (fleets/<uid>/) must reach the disk too: their parents flushed.
  std::vector<std::filesystem::path> made;
  for (auto missing = dir; !missing.empty() && !std::filesystem::exists(missing);
       missing = missing.parent_path())
    made.push_back(missing);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return make_error(ErrorKind::io, "create " + dir.string() + ": " + ec.message());
  for (const auto& fresh : made) {
    // Only the daemon looks inside: which users have which fleets is nobody else's business.
    std::filesystem::permissions(fresh, std::filesystem::perms::owner_all, ec);
    if (auto synced = sync_directory(fresh.parent_path()); !synced)
      return synced;
  }
  const auto temporary =
      dir / (std::string(kTemporaryPrefix) + file.filename().string() + "." +
             std::to_string(::getpid()) + "." + std::to_string(next.fetch_add(1)));
  UniqueFd fd(
      ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd)
    return std::unexpected(errno_error(ErrorKind::io, "create " + temporary.string(), errno));
  auto written = write_all(fd.get(), header(text.size(), crc32(text)) + text, file);
  if (written && ::fdatasync(fd.get()) != 0)
    written = std::unexpected(errno_error(ErrorKind::io, "fdatasync " + file.string(), errno));
  if (written && ::rename(temporary.c_str(), file.c_str()) != 0)
    written = std::unexpected(errno_error(ErrorKind::io, "rename to " + file.string(), errno));
  if (!written) {
    ::unlink(temporary.c_str());
    return written;
  }
  return sync_directory(dir);
}

Expected<nlohmann::json> read_record(const std::filesystem::path& file) {
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd)
    return std::unexpected(errno_error(ErrorKind::io, "open " + file.string(), errno));
  std::string content;
  char buffer[65536];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return std::unexpected(errno_error(ErrorKind::io, "read " + file.string(), errno));
    if (n == 0)
      break;
    content.append(buffer, static_cast<std::size_t>(n));
    if (content.size() > kMaxRecordBytes + 128)
      return std::unexpected(corrupt(file, "larger than any record"));
  }
  const auto newline = content.find('\n');
  if (newline == std::string::npos || newline > 100)
    return std::unexpected(corrupt(file, content.empty() ? "empty" : "no record header"));
  char magic[32] = {};
  int version = 0;
  std::size_t length = 0;
  std::uint32_t checksum = 0;
  const std::string head = content.substr(0, newline);
  if (std::sscanf(head.c_str(), "%31s %d %zu %8" SCNx32, magic, &version, &length, &checksum) !=
          4 ||
      magic != kRecordMagic || head != header(length, checksum).substr(0, newline))
    return std::unexpected(corrupt(file, "no record header"));
  if (version != kRecordVersion)
    return std::unexpected(corrupt(file, "record version " + std::to_string(version) +
                                             " (this crosvisord reads version " +
                                             std::to_string(kRecordVersion) + ")"));
  const std::string_view body = std::string_view(content).substr(newline + 1);
  if (body.size() != length)
    return std::unexpected(corrupt(file, "truncated or extended: " + std::to_string(body.size()) +
                                             " bytes where the header says " +
                                             std::to_string(length)));
  if (crc32(body) != checksum)
    return std::unexpected(corrupt(file, "its checksum does not match (damaged)"));
  auto json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded())
    return std::unexpected(corrupt(file, "its JSON does not parse"));
  return json;
}

Expected<void> remove_record(const std::filesystem::path& file) {
  if (::unlink(file.c_str()) != 0) {
    if (errno == ENOENT)
      return {};
    return std::unexpected(errno_error(ErrorKind::io, "remove " + file.string(), errno));
  }
  return sync_directory(file.parent_path());
}

}  // namespace crosvisor::store
