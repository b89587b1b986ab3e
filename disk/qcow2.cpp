#include "disk/qcow2.hpp"

namespace crosvisor::disk {
namespace {

constexpr std::uint64_t kClusterSize = std::uint64_t{1} << kQcow2ClusterBits;
constexpr std::uint32_t kMagic = 0x514649fb;  // "QFI\xfb"
constexpr std::uint32_t kVersion = 3;
constexpr std::uint32_t kRefcountOrder = 4;  // 16-bit refcounts
constexpr std::uint32_t kHeaderLength = 104;

}  // namespace

Bytes empty_qcow2(std::uint64_t virtual_size) {
  // One L2 table maps cluster_size / 8 clusters; the L1 table has one entry per L2 table.
  const std::uint64_t bytes_per_l2 = kClusterSize * (kClusterSize / 8);
  const std::uint64_t l1_entries = (virtual_size + bytes_per_l2 - 1) / bytes_per_l2;
  const std::uint64_t l1_clusters =
      std::max<std::uint64_t>(1, align_up(l1_entries * 8, kClusterSize) / kClusterSize);
  // Layout: header, refcount table, refcount block, L1 table.
  const std::uint64_t refcount_table = 1 * kClusterSize;
  const std::uint64_t refcount_block = 2 * kClusterSize;
  const std::uint64_t l1_table = 3 * kClusterSize;
  const std::uint64_t clusters = 3 + l1_clusters;

  Bytes image(clusters * kClusterSize, 0);
  store_be<std::uint32_t>(image, 0, kMagic);
  store_be<std::uint32_t>(image, 4, kVersion);
  // 8: backing file offset, 16: backing file size: none (QEMU is given the backing node)
  store_be<std::uint32_t>(image, 20, kQcow2ClusterBits);
  store_be<std::uint64_t>(image, 24, virtual_size);
  // 32: no encryption
  store_be<std::uint32_t>(image, 36, static_cast<std::uint32_t>(l1_entries));
  store_be<std::uint64_t>(image, 40, l1_table);
  store_be<std::uint64_t>(image, 48, refcount_table);
  store_be<std::uint32_t>(image, 56, 1);  // refcount table clusters
  // 60: no snapshots; 72..95: no feature bits
  store_be<std::uint32_t>(image, 96, kRefcountOrder);
  store_be<std::uint32_t>(image, 100, kHeaderLength);
  // 104: the end-of-header-extensions marker (type 0, length 0) is already zero.

  store_be<std::uint64_t>(image, refcount_table, refcount_block);
  for (std::uint64_t cluster = 0; cluster < clusters; ++cluster) {
    store_be<std::uint16_t>(image, refcount_block + 2 * cluster, 1);
  }
  return image;
}

}  // namespace crosvisor::disk
