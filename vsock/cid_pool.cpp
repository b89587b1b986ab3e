#include "vsock/cid_pool.hpp"

#include <bit>

namespace crosvisor::vsock {

Expected<CidPool> CidPool::create(CidRange range, std::optional<std::uint32_t> last_granted) {
  if (range.first < kFirstGuestCid || range.last >= kCidAny || range.first > range.last) {
    return make_error(ErrorKind::invalid_config,
                      "vsock CID range " + range.to_string() + " is invalid: it must lie within " +
                          std::to_string(kFirstGuestCid) + ".." + std::to_string(kCidAny - 1) +
                          " (0, 1 and 2 are reserved)");
  }
  std::uint32_t last = range.last;  // so that the first grant is range.first
  if (last_granted && *last_granted >= range.first && *last_granted <= range.last)
    last = *last_granted;
  return CidPool(range, last);
}

CidPool::CidPool(CidRange range, std::uint32_t last)
    : range_(range), size_(std::size_t{range.last} - range.first + 1), last_(last) {
  const std::size_t words = (size_ + 63) / 64;
  mine_.assign(words, 0);
  taken_.assign(words, 0);
  full_.assign((words + 63) / 64, 0);
  // Bits past the end of the range count as taken, so they are never found free.
  for (std::size_t i = size_; i < words * 64; ++i)
    set_taken(i, true);
}

void CidPool::set_taken(std::size_t i, bool value) {
  const std::size_t w = i / 64;
  const std::uint64_t bit = std::uint64_t{1} << (i % 64);
  taken_[w] = value ? taken_[w] | bit : taken_[w] & ~bit;
  const std::uint64_t summary_bit = std::uint64_t{1} << (w % 64);
  if (taken_[w] == ~std::uint64_t{0}) {
    full_[w / 64] |= summary_bit;
  } else {
    full_[w / 64] &= ~summary_bit;
  }
}

std::optional<std::size_t> CidPool::find_free(std::size_t from) const {
  if (from >= size_)
    return std::nullopt;
  std::size_t w = from / 64;
  // The rest of the first word.
  const std::uint64_t free_here = ~taken_[w] & (~std::uint64_t{0} << (from % 64));
  if (free_here != 0)
    return w * 64 + static_cast<std::size_t>(std::countr_zero(free_here));
  // Then the summary: the next word that is not full.
  for (std::size_t s = (w + 1) / 64; s < full_.size(); ++s) {
    std::uint64_t not_full = ~full_[s];
    if (s == (w + 1) / 64)
      not_full &= ~std::uint64_t{0} << ((w + 1) % 64);
    if (not_full == 0)
      continue;
    const std::size_t word = s * 64 + static_cast<std::size_t>(std::countr_zero(not_full));
    if (word >= taken_.size())
      return std::nullopt;
    return word * 64 + static_cast<std::size_t>(std::countr_zero(~taken_[word]));
  }
  return std::nullopt;
}

void CidPool::forget_external() {
  for (std::uint32_t cid : external_) {
    if (!in_use(cid))
      set_taken(index(cid), false);
  }
  external_.clear();
}

Expected<std::uint32_t> CidPool::grant(const Reserve& reserve) {
  bool wrapped = false;
  std::size_t from = index(last_) + 1;
  for (;;) {
    auto found = find_free(from);
    if (!found) {
      if (wrapped)
        break;
      // Start again at the beginning, giving CIDs held elsewhere another chance.
      wrapped = true;
      forget_external();
      from = 0;
      continue;
    }
    const std::uint32_t cid = range_.first + static_cast<std::uint32_t>(*found);
    if (reserve(cid)) {
      const std::size_t i = *found;
      mine_[i / 64] |= std::uint64_t{1} << (i % 64);
      set_taken(i, true);
      ++in_use_;
      last_ = cid;
      return cid;
    }
    external_.push_back(cid);
    set_taken(*found, true);
    from = *found + 1;
  }
  return make_error(ErrorKind::limit, "no free vsock CID in " + range_.to_string() + ": " +
                                          std::to_string(in_use_) + " granted here, " +
                                          std::to_string(external_.size()) +
                                          " held by other processes");
}

Expected<void> CidPool::grant_fixed(std::uint32_t cid, const Reserve& reserve) {
  if (cid < range_.first || cid > range_.last) {
    return make_error(ErrorKind::invalid_config, "vsock CID " + std::to_string(cid) +
                                                     " is outside the range " + range_.to_string() +
                                                     " this supervisor grants from");
  }
  if (in_use(cid)) {
    return make_error(ErrorKind::conflict,
                      "vsock CID " + std::to_string(cid) + " is already in use by another VM");
  }
  if (!reserve(cid)) {
    return make_error(ErrorKind::conflict, "vsock CID " + std::to_string(cid) +
                                               " is held by another process on this host");
  }
  const std::size_t i = index(cid);
  mine_[i / 64] |= std::uint64_t{1} << (i % 64);
  set_taken(i, true);
  ++in_use_;
  return {};
}

void CidPool::release(std::uint32_t cid) {
  if (!in_use(cid))
    return;
  const std::size_t i = index(cid);
  mine_[i / 64] &= ~(std::uint64_t{1} << (i % 64));
  set_taken(i, false);
  --in_use_;
}

bool CidPool::in_use(std::uint32_t cid) const {
  if (cid < range_.first || cid > range_.last)
    return false;
  const std::size_t i = index(cid);
  return (mine_[i / 64] >> (i % 64)) & 1;
}

}  // namespace crosvisor::vsock
