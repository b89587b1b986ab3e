// Which vsock context ids (CIDs) a supervisor may grant: AVF's policy. Grants come from a
// configured range, continuing round-robin after the last granted CID and wrapping, so a CID that
// was just released is not handed out again at once; CIDs in use are skipped; a fixed CID is
// honoured only if free; exhaustion is an error. Plain C++: the actor and the host-wide locks sit
// around it.
//
// Cost: the range is a two-level bitmap (one bit per CID, one summary bit per 64 CIDs), so finding
// the next free CID reads at most two words plus the summary (1024 bits for the default range),
// whether 1 or 60 000 CIDs are taken.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "crosvisor/error.hpp"

namespace crosvisor::vsock {

// 0 (hypervisor), 1 (local) and 2 (host) are never guest CIDs; 0xffffffff is VMADDR_CID_ANY.
inline constexpr std::uint32_t kFirstGuestCid = 3;
inline constexpr std::uint32_t kCidAny = 0xffffffffu;

struct CidRange {
  std::uint32_t first = 2048;
  std::uint32_t last = 65535;  // inclusive; AVF keeps CIDs <= 65535 so a CID fits a vsock port
  std::string to_string() const { return std::to_string(first) + ".." + std::to_string(last); }
};

class CidPool {
 public:
  // Takes `cid` host-wide (another process may hold it); false when it cannot.
  using Reserve = std::function<bool(std::uint32_t)>;

  // `last_granted`: where the previous run stopped (the next grant follows it).
  static Expected<CidPool> create(CidRange range, std::optional<std::uint32_t> last_granted = {});

  Expected<std::uint32_t> grant(const Reserve& reserve);
  Expected<void> grant_fixed(std::uint32_t cid, const Reserve& reserve);
  void release(std::uint32_t cid);

  bool in_use(std::uint32_t cid) const;
  std::size_t in_use_count() const { return in_use_; }
  std::uint32_t last_granted() const { return last_; }
  const CidRange& range() const { return range_; }

 private:
  explicit CidPool(CidRange range, std::uint32_t last);

  std::size_t index(std::uint32_t cid) const { return cid - range_.first; }
  bool taken(std::size_t i) const { return (taken_[i / 64] >> (i % 64)) & 1; }
  void set_taken(std::size_t i, bool value);
  // The first index >= from that is neither ours nor known to be held elsewhere.
  std::optional<std::size_t> find_free(std::size_t from) const;
  void forget_external();

  CidRange range_;
  std::size_t size_;
  std::uint32_t last_;
  std::vector<std::uint64_t> mine_;      // granted by this pool
  std::vector<std::uint64_t> taken_;     // mine_ | held by another process when last tried
  std::vector<std::uint64_t> full_;      // bit w set when taken_[w] is all ones
  std::vector<std::uint32_t> external_;  // CIDs found held elsewhere; retried after a wrap
  std::size_t in_use_ = 0;
};

}  // namespace crosvisor::vsock
