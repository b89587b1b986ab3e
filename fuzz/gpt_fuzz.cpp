// A GPT as `vm composite --inspect` reads it from a composite's header and footer files: the
// first byte chooses the primary header (LBA 1, entries at LBA 2) or a backup one (last sector,
// entries just before it), and whether the harness makes both CRCs right (else a mutation almost
// never gets past them to the fields behind); the rest is the disk's bytes.
#include <cstring>
#include <span>
#include <vector>

#include "core/crc32.hpp"
#include "disk/gpt.hpp"
#include "fuzz/fuzz_target.hpp"

namespace {

void store_u32(std::vector<std::uint8_t>& bytes, std::size_t at, std::uint32_t value) {
  std::memcpy(bytes.data() + at, &value, sizeof(value));  // little-endian, as GPT and this host
}

// The entries' CRC and then the header's, as a valid GPT has them (parse_gpt reads a header of
// kGptHeaderSize bytes and kGptEntriesSize bytes of entries).
void fix_crcs(std::vector<std::uint8_t>& disk, std::size_t header, std::size_t entries) {
  using namespace crosvisor::disk;
  if (header + kGptHeaderSize > disk.size() || entries + kGptEntriesSize > disk.size())
    return;
  store_u32(disk, header + 88, crosvisor::crc32(std::span(disk).subspan(entries, kGptEntriesSize)));
  store_u32(disk, header + 16, 0);
  store_u32(disk, header + 16, crosvisor::crc32(std::span(disk).subspan(header, kGptHeaderSize)));
}

int gpt(const std::uint8_t* data, std::size_t size) {
  using namespace crosvisor::disk;
  if (size < 1)
    return 0;
  const bool backup = data[0] & 1;
  std::vector<std::uint8_t> disk(data + 1, data + size);
  if (backup && disk.size() < kSectorSize)
    return 0;
  const std::size_t header = backup ? disk.size() - kSectorSize : kSectorSize;
  const std::size_t entries = backup ? kFooterPadding : 2 * kSectorSize;
  if (data[0] & 2)
    fix_crcs(disk, header, entries);
  auto info = parse_gpt(disk, header, entries);
  if (info) {
    for (const auto& partition : info->partitions)
      crosvisor::fuzz::require(partition.first_lba <= partition.last_lba,
                               "a partition starts before it ends");
  }
  return 0;
}

}  // namespace

CROSVISOR_FUZZ_TARGET("gpt", gpt)
