// A record file of the state directory, as a restarted crosvisord reads it after a crash, a bad
// disk or a hand edit. The first byte chooses: the raw bytes as the file (the framing and its
// CRC under attack), or the bytes as an intact record's JSON (the VM, fleet and network readers
// under attack). Either gives a record or an error naming the file.
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "core/crc32.hpp"
#include "fuzz/fuzz_target.hpp"
#include "store/record_file.hpp"
#include "store/records.hpp"

namespace {

using namespace crosvisor;

// The record file lives in a directory of its own in /dev/shm (memory), named after this
// process and removed at exit. libFuzzer ends some runs without exit handlers (a finding, a
// time limit), so each run first removes those of processes that are gone. read_record refuses
// symbolic links, so a memfd's /proc/self/fd/N name would not do.
const std::filesystem::path& record_path() {
  static const std::filesystem::path path = [] {
    const std::string prefix = "crosvisor-fuzz-";
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/dev/shm", ec)) {
      const auto name = entry.path().filename().string();
      if (name.starts_with(prefix) &&
          !std::filesystem::exists("/proc/" + name.substr(prefix.size()), ec))
        std::filesystem::remove_all(entry.path(), ec);
    }
    static const std::filesystem::path made =
        std::filesystem::path("/dev/shm") / (prefix + std::to_string(getpid()));
    std::filesystem::create_directories(made, ec);
    fuzz::require(!ec, "a directory for the record file");
    std::atexit([] { std::filesystem::remove_all(made); });
    return made / "vm.rec";
  }();
  return path;
}

void write_record_file(std::string_view bytes) {
  std::ofstream out(record_path(), std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  fuzz::require(static_cast<bool>(out.flush()), "the record file can be written");
}

int state_records(const std::uint8_t* data, std::size_t size) {
  if (size < 1)
    return 0;
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string file;
  if (data[0] & 1) {
    char header[64];
    std::snprintf(header, sizeof(header), "%s %d %zu %08x\n", store::kRecordMagic.data(),
                  store::kRecordVersion, body.size(), static_cast<unsigned>(crc32(body)));
    file = header;
  }
  file += body;
  write_record_file(file);
  auto json = store::read_record(record_path());
  if (!json) {
    fuzz::require(json.error().message.find(record_path().string()) != std::string::npos,
                  "a refused record's error names its file");
    return 0;
  }
  (void)store::vm_record_from(*json);
  (void)store::fleet_record_from(*json);
  (void)store::network_record_from(*json);
  return 0;
}

}  // namespace

CROSVISOR_FUZZ_TARGET("state_records", state_records)
