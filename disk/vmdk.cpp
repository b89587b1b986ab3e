#include "disk/vmdk.hpp"

#include <cstring>
#include <random>

namespace crosvisor::disk {
namespace {

constexpr std::uint32_t kSparseMagic = 0x564d444b;  // "KDMV"
constexpr std::uint32_t kFlagNewlineCheck = 1u << 0;
constexpr std::uint32_t kFlagRedundantTables = 1u << 1;

// Each component's share of the disk in whole sectors; a filler swallowed by its partition's
// rounding has none.
std::vector<std::pair<const Component*, std::uint64_t>> component_sectors(
    const CompositeLayout& layout) {
  std::vector<std::pair<const Component*, std::uint64_t>> out;
  std::uint64_t covered = 0;  // bytes of the disk described so far
  for (const auto& component : layout.components) {
    const std::uint64_t end = component.offset + component.length;
    if (covered >= end)
      continue;
    const std::uint64_t sectors = (align_up(end, kSectorSize) - covered) / kSectorSize;
    out.emplace_back(&component, sectors);
    covered += sectors * kSectorSize;
  }
  return out;
}

std::string header(const std::string& cid, const std::string& parent_cid,
                   const std::string& parent_hint, const std::string& create_type) {
  std::string text =
      "# Disk DescriptorFile\nversion=1\nCID=" + cid + "\nparentCID=" + parent_cid + "\n";
  if (!parent_hint.empty())
    text += "parentFileNameHint=\"" + parent_hint + "\"\n";
  // No blank line before the extents: QEMU would read the next extent twice.
  text += "createType=\"" + create_type + "\"\n# Extent description\n";
  return text;
}

const std::string kFooter = "# The Disk Data Base\n#DDB\nddb.virtualHWVersion = \"4\"\n";

std::string flat(std::uint64_t sectors, const std::string& file) {
  return "RW " + std::to_string(sectors) + " FLAT \"" + file + "\" 0\n";
}

std::string random_cid() {
  std::random_device random;
  char text[9];
  std::snprintf(text, sizeof(text), "%08x", static_cast<unsigned>(random()) & 0x7fffffffu);
  return text;
}

void put32(Bytes& bytes, std::size_t at, std::uint32_t value) {
  for (int i = 0; i < 4; ++i)
    bytes[at + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(value >> (8 * i));
}

void put64(Bytes& bytes, std::size_t at, std::uint64_t value) {
  for (int i = 0; i < 8; ++i)
    bytes[at + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(value >> (8 * i));
}

}  // namespace

std::string encode_vmdk(const CompositeLayout& layout, const ComponentNamer& name_of) {
  std::string text = header("fffffffe", "ffffffff", "", "monolithicFlat");
  for (const auto& [component, sectors] : component_sectors(layout))
    text += flat(sectors, name_of(*component));
  return text + kFooter;
}

ProtectedVmdk encode_protected_vmdk(const CompositeLayout& layout, const ComponentNamer& name_of,
                                    const std::string& parent_name,
                                    const std::function<std::string(std::size_t)>& sparse_name) {
  ProtectedVmdk out;
  const std::string parent_cid = random_cid();
  out.parent = header(parent_cid, "ffffffff", "", "monolithicFlat");
  out.child = header(random_cid(), parent_cid, parent_name, "twoGbMaxExtentSparse");
  std::uint64_t run = 0;  // sectors of the read-only run being gathered
  const auto end_run = [&] {
    if (run == 0)
      return;
    out.child += "RW " + std::to_string(run) + " SPARSE \"" +
                 sparse_name(out.sparse_sectors.size()) + "\"\n";
    out.sparse_sectors.push_back(run);
    run = 0;
  };
  for (const auto& [component, sectors] : component_sectors(layout)) {
    if (component->writable) {
      end_run();
      out.child += flat(sectors, name_of(*component));
      // The child serves this range itself and never asks the parent: the parent's extent is a
      // placeholder, so that no file is opened twice (QEMU's image locks would refuse it).
      out.parent += flat(sectors, "/dev/null");
    } else {
      run += sectors;
      out.parent += flat(sectors, name_of(*component));
    }
  }
  end_run();
  out.child += kFooter;
  out.parent += kFooter;
  return out;
}

SparseExtent empty_sparse_extent(std::uint64_t sectors) {
  const std::uint64_t table_covers = std::uint64_t{kSparseEntriesPerTable} * kSparseGrainSectors;
  const std::uint64_t tables = (sectors + table_covers - 1) / table_covers;
  const std::uint64_t directory_sectors = align_up(tables * 4, kSectorSize) / kSectorSize;
  const std::uint64_t table_sectors = kSparseEntriesPerTable * 4 / kSectorSize;
  // Header, grain directory, redundant directory, then the tables and their copies (zeros).
  const std::uint64_t directory = 1;
  const std::uint64_t redundant_directory = directory + directory_sectors;
  const std::uint64_t first_table = redundant_directory + directory_sectors;
  const std::uint64_t first_redundant_table = first_table + tables * table_sectors;
  const std::uint64_t overhead =
      align_up(first_redundant_table + tables * table_sectors, kSparseGrainSectors);

  SparseExtent extent;
  extent.head.assign((1 + 2 * directory_sectors) * kSectorSize, 0);
  Bytes& b = extent.head;
  put32(b, 0, kSparseMagic);
  put32(b, 4, 1);  // version
  put32(b, 8, kFlagNewlineCheck | kFlagRedundantTables);
  put64(b, 12, sectors);              // capacity
  put64(b, 20, kSparseGrainSectors);  // grain size
  put64(b, 28, 0);                    // no embedded descriptor
  put64(b, 36, 0);
  put32(b, 44, kSparseEntriesPerTable);
  put64(b, 48, redundant_directory);
  put64(b, 56, directory);
  put64(b, 64, overhead);
  b[72] = 0;  // cleanly shut down
  const std::uint8_t newline_check[] = {'\n', ' ', '\r', '\n'};
  std::memcpy(b.data() + 73, newline_check, sizeof(newline_check));
  // compressAlgorithm (offset 77) stays 0.
  for (std::uint64_t t = 0; t < tables; ++t) {
    put32(b, directory * kSectorSize + t * 4,
          static_cast<std::uint32_t>(first_table + t * table_sectors));
    put32(b, redundant_directory * kSectorSize + t * 4,
          static_cast<std::uint32_t>(first_redundant_table + t * table_sectors));
  }
  extent.file_size = overhead * kSectorSize;
  return extent;
}

}  // namespace crosvisor::disk
