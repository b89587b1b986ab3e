// A create or fleet_up request's VM descriptions with the fds that came with it, as crosvisord
// takes them: the first byte says fleet or VM and how many fds came, the next bytes what each is
// (a regular file read-only or read-write, a pipe, /dev/null, an O_PATH fd), the rest is the JSON.
// Whatever the JSON says, every received fd ends in the result or closed: once the result is
// gone, none of them is open.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string_view>
#include <vector>

#include "fuzz/fuzz_target.hpp"
#include "protocol/fleet_json.hpp"
#include "protocol/spec_json.hpp"

namespace {

using namespace crosvisor;

int open_kind(std::uint8_t kind) {
  switch (kind % 6) {
    case 0:
    case 1: {
      const int fd = memfd_create("fuzz-image", MFD_CLOEXEC);
      if (fd >= 0 && ftruncate(fd, 4096) != 0) {
        close(fd);
        return -1;
      }
      // A read-only one: reopened through /proc, as a client's O_RDONLY open would give it.
      if (fd < 0 || kind % 6 == 1)
        return fd;
      const std::string path = "/proc/self/fd/" + std::to_string(fd);
      const int read_only = open(path.c_str(), O_RDONLY | O_CLOEXEC);
      close(fd);
      return read_only;
    }
    case 2: {
      int ends[2];
      if (pipe2(ends, O_CLOEXEC) != 0)
        return -1;
      close(ends[1]);
      return ends[0];
    }
    case 3:
      return open("/dev/null", O_RDWR | O_CLOEXEC);
    case 4:
      return open("/", O_PATH | O_CLOEXEC);
    default:
      return open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  }
}

int received_fds(const std::uint8_t* data, std::size_t size) {
  if (size < 1)
    return 0;
  const bool fleet = data[0] & 0x80;
  const std::size_t count = std::min<std::size_t>(data[0] & 0x07, size - 1);
  std::vector<UniqueFd> fds;
  std::vector<int> numbers;
  for (std::size_t i = 0; i < count; ++i) {
    const int fd = open_kind(data[1 + i]);
    fuzz::require(fd >= 0, "the fuzzer can open its fds");
    numbers.push_back(fd);
    fds.emplace_back(fd);
  }
  const std::string_view text(reinterpret_cast<const char*>(data + 1 + count), size - 1 - count);
  const auto json = nlohmann::json::parse(text, nullptr, false);
  if (json.is_discarded())
    return 0;
  if (fleet)
    (void)protocol::fleet_from_message(json, std::move(fds));
  else
    (void)protocol::spec_from_message(json, std::move(fds));
  for (const int fd : numbers)
    fuzz::require(fcntl(fd, F_GETFD) == -1, "every received fd is closed once its VM spec is gone");
  return 0;
}

}  // namespace

CROSVISOR_FUZZ_TARGET("received_fds", received_fds)
