#include "actors/cid_registry.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <map>
#include <set>

#include "crosvisor/error_bridge.hpp"
#include "crosvisor/messages.hpp"

namespace crosvisor {
namespace {

struct CidRegistryState {
  static inline const char* name = "crosvisor.cid_registry";
  std::optional<vsock::CidPool> pool;
  std::optional<vsock::CidLocks> locks;
  std::optional<vsock::LastCidFile> state_file;
  struct Held {
    UniqueFd lock;  // the host-wide reservation
    caf::actor_addr owner;
  };
  std::map<std::uint32_t, Held> held;
  std::map<caf::actor_addr, std::set<std::uint32_t>> owned;  // the same, by owner

  void release(std::uint32_t cid) {
    auto it = held.find(cid);
    if (it == held.end())
      return;
    pool->release(cid);
    if (auto cids = owned.find(it->second.owner); cids != owned.end()) {
      cids->second.erase(cid);
      if (cids->second.empty())
        owned.erase(cids);
    }
    locks->unlock(cid, std::move(it->second.lock));
    held.erase(it);
  }
};

using Registry = CidRegistryActor::stateful_pointer<CidRegistryState>;

CidRegistryActor::behavior_type registry(Registry self, CidRegistryOptions options) {
  auto& st = self->state;
  auto state_file = options.state_file.empty()
                        ? Expected<vsock::LastCidFile>(make_error(ErrorKind::not_found, "none"))
                        : vsock::LastCidFile::open(options.state_file);
  std::optional<std::uint32_t> last;
  if (state_file) {
    last = state_file->load();
  } else {
    // Only the round-robin start is lost: CIDs stay unique through their reservations.
    spdlog::debug("cid registry: {}", state_file.error().message);
  }
  auto pool = vsock::CidPool::create(options.range, last);
  if (!pool) {
    spdlog::error("cid registry: {}", pool.error().message);
    self->quit(to_caf_error(pool.error()));
    return CidRegistryActor::behavior_type::make_empty_behavior();
  }
  st.pool.emplace(std::move(*pool));
  st.locks.emplace(options.scope);
  if (state_file)
    st.state_file.emplace(std::move(*state_file));
  self->set_down_handler([=](const caf::down_msg& down) {
    auto& s = self->state;
    auto cids = s.owned.find(down.source);
    if (cids == s.owned.end())
      return;
    const std::set<std::uint32_t> released = cids->second;
    for (std::uint32_t cid : released)
      s.release(cid);
  });
  return {
      [=](grant_atom, caf::actor owner, std::uint32_t fixed) -> caf::result<std::uint32_t> {
        auto& s = self->state;
        UniqueFd lock;
        std::optional<Error> lock_error;  // e.g. out of fds: not the same as "held elsewhere"
        const vsock::CidPool::Reserve reserve = [&](std::uint32_t cid) {
          if (lock_error)
            return false;
          auto taken = s.locks->try_lock(cid);
          if (!taken)
            lock_error = taken.error();
          if (!taken || !*taken)
            return false;
          lock = std::move(**taken);
          return true;
        };
        const auto failure = [&](const Error& error) {
          return to_caf_error(lock_error ? *lock_error : error);
        };
        std::uint32_t cid = fixed;
        if (fixed != 0) {
          if (auto granted = s.pool->grant_fixed(fixed, reserve); !granted) {
            Error why = granted.error();
            if (why.kind == ErrorKind::conflict && !s.pool->in_use(fixed)) {
              if (auto holder = s.locks->holder(fixed))
                why.message += " (" + *holder + ")";
            }
            return failure(why);
          }
        } else {
          auto granted = s.pool->grant(reserve);
          if (!granted)
            return failure(granted.error());
          cid = *granted;
          if (s.state_file) {
            if (auto saved = s.state_file->save(cid); !saved)
              spdlog::warn("cid registry: {}", saved.error().message);
          }
        }
        s.held.emplace(cid, CidRegistryState::Held{std::move(lock), owner.address()});
        auto& cids = s.owned[owner.address()];
        if (cids.empty())
          self->monitor(owner);  // one monitor per owner
        cids.insert(cid);
        return cid;
      },
      [=](release_atom, std::uint32_t cid) { self->state.release(cid); },
      [=](share_atom, std::uint32_t cid) -> caf::result<SharedFd> {
        auto held = self->state.held.find(cid);
        if (held == self->state.held.end() || !held->second.lock)
          return to_caf_error(ErrorKind::state, "vsock CID " + std::to_string(cid) +
                                                    " has no reservation here to share");
        UniqueFd copy(::fcntl(held->second.lock.get(), F_DUPFD_CLOEXEC, 3));
        if (!copy)
          return to_caf_error(errno_error(ErrorKind::io, "dup a CID reservation", errno));
        return std::make_shared<const UniqueFd>(std::move(copy));
      },
      [=](take_over_atom, caf::actor owner, std::uint32_t cid) -> caf::result<std::uint32_t> {
        auto& s = self->state;
        UniqueFd lock;
        // Bound already (EADDRINUSE): by the VMM's own copy, as expected. Free: it holds none
        // (any more), so this supervisor reserves it again.
        const vsock::CidPool::Reserve reserve = [&](std::uint32_t wanted) {
          auto taken = s.locks->try_lock(wanted);
          if (taken && *taken)
            lock = std::move(**taken);
          return true;
        };
        if (auto granted = s.pool->grant_fixed(cid, reserve); !granted)
          return to_caf_error(granted.error());
        s.held.emplace(cid, CidRegistryState::Held{std::move(lock), owner.address()});
        auto& cids = s.owned[owner.address()];
        if (cids.empty())
          self->monitor(owner);
        cids.insert(cid);
        return cid;
      },
      [=](in_use_atom) { return static_cast<std::uint64_t>(self->state.pool->in_use_count()); },
  };
}

}  // namespace

CidRegistryActor spawn_cid_registry(caf::actor_system& system, CidRegistryOptions options) {
  // Detached: its flock calls and state-file writes touch the file system, and an embedding
  // application's scheduler threads must never wait on that.
  return system.spawn<caf::detached>(registry, std::move(options));
}

}  // namespace crosvisor
