// The CID registry actor: grants, fixed CIDs, and CIDs coming back when their owner goes down.
#include "actors/cid_registry.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <catch2/catch.hpp>

#include "crosvisor/messages.hpp"
#include "support/processes.hpp"
#include "support/temp_dir.hpp"

using namespace crosvisor;
using namespace std::chrono_literals;

namespace {

struct Registry {
  test::TempDir dir;
  caf::actor_system_config config;
  caf::actor_system system{config};
  caf::scoped_actor self{system};

  CidRegistryActor spawn(vsock::CidRange range) {
    return spawn_cid_registry(system, {range, dir / "locks", dir / "last-cid"});
  }

  caf::expected<std::uint32_t> grant(const CidRegistryActor& registry, const caf::actor& owner,
                                     std::uint32_t fixed = 0) {
    caf::expected<std::uint32_t> result{caf::sec::none};
    self->request(registry, caf::infinite, grant_atom::value, owner, fixed)
        .receive([&](std::uint32_t cid) { result = cid; },
                 [&](caf::error& e) { result = std::move(e); });
    return result;
  }

  std::uint64_t in_use(const CidRegistryActor& registry) {
    std::uint64_t count = 0;
    self->request(registry, caf::infinite, in_use_atom::value)
        .receive([&](std::uint64_t n) { count = n; }, [](caf::error&) {});
    return count;
  }
};

// An owner that does nothing. It takes an argument because CAF 0.17 binds a reference through a
// null pointer when a function-based actor is spawned without any (UBSan reports it).
caf::behavior idle(caf::event_based_actor*, int) {
  return {[](int) {}};
}

}  // namespace

TEST_CASE("the registry grants CIDs round-robin and takes them back when the owner is down") {
  Registry r;
  auto registry = r.spawn({2048, 2050});
  auto owner = r.system.spawn(idle, 0);
  CHECK(r.grant(registry, owner) == 2048u);
  CHECK(r.grant(registry, owner) == 2049u);
  auto other = r.system.spawn(idle, 0);
  CHECK(r.grant(registry, other) == 2050u);
  auto exhausted = r.grant(registry, other);
  REQUIRE_FALSE(exhausted);
  CHECK_THAT(r.system.render(exhausted.error()),
             Catch::Contains("no free vsock CID in 2048..2050"));

  r.self->send_exit(owner, caf::exit_reason::kill);
  CHECK(test::eventually([&] { return r.in_use(registry) == 1; }, 5s));
  // Round-robin: after 2050 comes 2048 again, now free.
  CHECK(r.grant(registry, other) == 2048u);
  r.self->send_exit(registry, caf::exit_reason::user_shutdown);
  r.self->send_exit(other, caf::exit_reason::user_shutdown);
}

TEST_CASE("two registries sharing a lock directory never grant the same CID") {
  Registry r;
  auto first = r.spawn({3000, 3001});
  auto second = r.spawn({3000, 3001});
  auto owner = r.system.spawn(idle, 0);
  CHECK(r.grant(first, owner) == 3000u);
  CHECK(r.grant(second, owner) == 3001u);  // 3000 is locked by the first
  auto none = r.grant(second, owner);
  REQUIRE_FALSE(none);
  CHECK_THAT(r.system.render(none.error()), Catch::Contains("1 held by other processes"));
  auto fixed = r.grant(second, owner, 3000);
  REQUIRE_FALSE(fixed);
  CHECK_THAT(r.system.render(fixed.error()),
             Catch::Contains("vsock CID 3000 is held by another process"));
  r.self->send(first, release_atom::value, std::uint32_t{3000});
  CHECK(test::eventually([&] { return r.in_use(first) == 0; }, 5s));
  CHECK(r.grant(second, owner, 3000) == 3000u);
  r.self->send_exit(first, caf::exit_reason::user_shutdown);
  r.self->send_exit(second, caf::exit_reason::user_shutdown);
  r.self->send_exit(owner, caf::exit_reason::user_shutdown);
}
