// The CID policy alone, and the host-wide locks between real processes.
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <set>

#include "support/temp_dir.hpp"
#include "vsock/cid_locks.hpp"
#include "vsock/cid_pool.hpp"

using namespace crosvisor;
using namespace crosvisor::vsock;

namespace {
const CidPool::Reserve kAlways = [](std::uint32_t) { return true; };

CidPool pool(CidRange range, std::optional<std::uint32_t> last = {}) {
  auto p = CidPool::create(range, last);
  REQUIRE(p.has_value());
  return std::move(*p);
}
}  // namespace

TEST_CASE("grants continue after the last granted CID and wrap around the range") {
  auto p = pool({10, 14});
  CHECK(p.grant(kAlways) == 10u);
  CHECK(p.grant(kAlways) == 11u);
  p.release(10);
  // A released CID is not reused at once: the search goes on from the last grant.
  CHECK(p.grant(kAlways) == 12u);
  CHECK(p.grant(kAlways) == 13u);
  CHECK(p.grant(kAlways) == 14u);
  CHECK(p.grant(kAlways) == 10u);  // wrapped; 11 is still in use
  CHECK(p.in_use_count() == 5);
  auto exhausted = p.grant(kAlways);
  REQUIRE_FALSE(exhausted.has_value());
  CHECK(exhausted.error().message ==
        "no free vsock CID in 10..14: 5 granted here, 0 held by other processes");
  p.release(13);
  CHECK(p.grant(kAlways) == 13u);
}

TEST_CASE("CIDs held by other processes are skipped, and retried after a wrap") {
  auto p = pool({100, 104});
  std::set<std::uint32_t> elsewhere{100, 101};
  const CidPool::Reserve reserve = [&](std::uint32_t cid) { return elsewhere.count(cid) == 0; };
  CHECK(p.grant(reserve) == 102u);
  CHECK(p.grant(reserve) == 103u);
  CHECK(p.grant(reserve) == 104u);
  elsewhere.erase(100);  // the other process let go
  CHECK(p.grant(reserve) == 100u);
  auto full = p.grant(reserve);
  REQUIRE_FALSE(full.has_value());
  CHECK(full.error().message ==
        "no free vsock CID in 100..104: 4 granted here, 1 held by other processes");
}

TEST_CASE("a fixed CID is honoured when free and refused clearly when not") {
  auto p = pool({2048, 65535});
  REQUIRE(p.grant_fixed(3000, kAlways).has_value());
  CHECK(p.in_use(3000));
  CHECK(p.grant_fixed(3000, kAlways).error().message ==
        "vsock CID 3000 is already in use by another VM");
  CHECK(p.grant_fixed(4000, [](std::uint32_t) { return false; }).error().message ==
        "vsock CID 4000 is held by another process on this host");
  CHECK(p.grant_fixed(100, kAlways).error().message ==
        "vsock CID 100 is outside the range 2048..65535 this supervisor grants from");
  // Round-robin grants step over the fixed one.
  auto q = pool({10, 12});
  REQUIRE(q.grant_fixed(10, kAlways).has_value());
  CHECK(q.grant(kAlways) == 11u);
}

TEST_CASE("0, 1, 2 and VMADDR_CID_ANY are never granted") {
  CHECK_FALSE(CidPool::create({2, 100}).has_value());
  CHECK_FALSE(CidPool::create({0, 100}).has_value());
  CHECK_FALSE(CidPool::create({3, kCidAny}).has_value());
  CHECK_FALSE(CidPool::create({200, 100}).has_value());
  auto p = pool({3, 5});
  CHECK(p.grant(kAlways) == 3u);
}

TEST_CASE("the default range grants every CID from 2048 to 65535 exactly once") {
  auto p = pool({});
  std::set<std::uint32_t> seen;
  for (;;) {
    auto cid = p.grant(kAlways);
    if (!cid)
      break;
    CHECK(*cid >= 2048u);
    CHECK(*cid <= 65535u);
    seen.insert(*cid);
  }
  CHECK(seen.size() == 65535 - 2048 + 1);
  p.release(40000);
  CHECK(p.grant(kAlways) == 40000u);
}

TEST_CASE("the last granted CID survives a restart") {
  test::TempDir dir;
  const auto state = dir / "last-cid";
  auto file = LastCidFile::open(state);
  REQUIRE(file.has_value());
  CHECK_FALSE(file->load().has_value());
  auto first = pool({2048, 65535}, file->load());
  for (int i = 0; i < 5; ++i)
    REQUIRE(first.grant(kAlways).has_value());
  REQUIRE(file->save(first.last_granted()).has_value());
  // The restarted supervisor (another open of the file) goes on after 2052, not back to 2048.
  auto reopened = LastCidFile::open(state);
  REQUIRE(reopened.has_value());
  auto second = pool({2048, 65535}, reopened->load());
  CHECK(second.grant(kAlways) == 2053u);
  // Rewritten in place: a shorter number leaves nothing of a longer one behind.
  REQUIRE(file->save(4000000000u).has_value());
  REQUIRE(file->save(9).has_value());
  CHECK(reopened->load() == std::optional<std::uint32_t>(9));
  // A stale value outside the range is ignored.
  REQUIRE(file->save(7).has_value());
  CHECK(pool({2048, 65535}, reopened->load()).grant(kAlways) == 2048u);
}

TEST_CASE("two processes granting and releasing thousands of CIDs never hold one at once") {
  const CidLocks locks("crosvisor-test-" + std::to_string(getpid()));
  constexpr std::uint32_t kFirst = 5000, kCount = 32;  // small, so the two collide constantly
  // Who holds each CID right now, seen by both processes.
  auto* holder = static_cast<std::atomic<pid_t>*>(mmap(nullptr, sizeof(std::atomic<pid_t>) * kCount,
                                                       PROT_READ | PROT_WRITE,
                                                       MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  REQUIRE(holder != MAP_FAILED);
  auto* violations =
      static_cast<std::atomic<int>*>(mmap(nullptr, sizeof(std::atomic<int>), PROT_READ | PROT_WRITE,
                                          MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  for (std::uint32_t i = 0; i < kCount; ++i)
    new (&holder[i]) std::atomic<pid_t>(0);
  new (violations) std::atomic<int>(0);

  const auto worker = [&](int rounds) {
    auto p = CidPool::create({kFirst, kFirst + kCount - 1});
    std::map<std::uint32_t, UniqueFd> held;
    for (int round = 0; round < rounds; ++round) {
      auto cid = p->grant([&](std::uint32_t c) {
        auto lock = locks.try_lock(c);
        if (!lock || !*lock)
          return false;
        held.emplace(c, std::move(**lock));
        return true;
      });
      if (cid) {
        pid_t expected = 0;
        if (!holder[*cid - kFirst].compare_exchange_strong(expected, getpid()))
          violations->fetch_add(1);
      }
      if (held.size() > kCount / 4 || (!cid && !held.empty())) {
        auto it = held.begin();
        holder[it->first - kFirst].store(0);
        p->release(it->first);
        locks.unlock(it->first, std::move(it->second));
        held.erase(it);
      }
    }
    // Let go of everything before exiting, so the other process may take it.
    for (auto& [cid, lock] : held) {
      holder[cid - kFirst].store(0);
      locks.unlock(cid, std::move(lock));
    }
  };

  pid_t children[2];
  for (auto& child : children) {
    child = fork();
    if (child == 0) {
      worker(5000);
      _exit(0);
    }
  }
  for (pid_t child : children) {
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  CHECK(violations->load() == 0);

  // A process killed with SIGKILL while holding CIDs leaks none of them.
  int ready[2];
  REQUIRE(pipe(ready) == 0);
  const pid_t victim = fork();
  if (victim == 0) {
    std::vector<UniqueFd> mine;
    for (std::uint32_t c = kFirst; c < kFirst + kCount; ++c) {
      auto lock = locks.try_lock(c);
      if (lock && *lock)
        mine.push_back(std::move(**lock));
    }
    char byte = static_cast<char>(mine.size());
    [[maybe_unused]] auto n = write(ready[1], &byte, 1);
    pause();
    _exit(0);
  }
  close(ready[1]);
  char held_by_victim = 0;
  REQUIRE(read(ready[0], &held_by_victim, 1) == 1);
  close(ready[0]);
  CHECK(held_by_victim == static_cast<char>(kCount));
  CHECK_FALSE(locks.try_lock(kFirst)->has_value());  // held by the victim now
  kill(victim, SIGKILL);
  REQUIRE(waitpid(victim, nullptr, 0) == victim);
  auto survivor = CidPool::create({kFirst, kFirst + kCount - 1});
  std::vector<UniqueFd> regained;
  for (std::uint32_t i = 0; i < kCount; ++i) {
    auto cid = survivor->grant([&](std::uint32_t c) {
      auto lock = locks.try_lock(c);
      if (!lock || !*lock)
        return false;
      regained.push_back(std::move(**lock));
      return true;
    });
    CHECK(cid.has_value());
  }
  CHECK(regained.size() == kCount);
  munmap(holder, sizeof(std::atomic<pid_t>) * kCount);
  munmap(violations, sizeof(std::atomic<int>));
}
