// Memory dump files: named by VM and time, private, and capped per VM name.
#include "vmm/dump_files.hpp"

#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "support/temp_dir.hpp"

using namespace crosvisor;
using namespace std::chrono_literals;

TEST_CASE("dump files are named by VM and time, private, and at most `keep` per VM name") {
  test::TempDir dir;
  const auto place = dir / "dumps";
  const auto t0 = std::chrono::system_clock::from_time_t(1'800'000'000);  // 2027-01-15T08:00:00Z
  auto first = vmm::create_dump_file(place, "web", std::nullopt, 2, t0);
  REQUIRE(first.has_value());
  CHECK(first->path == place / "web-20270115T080000Z.core");
  struct stat info {};
  REQUIRE(::fstat(first->fd.get(), &info) == 0);
  CHECK((info.st_mode & 0777) == 0600);
  // Two in the same second do not collide.
  auto second = vmm::create_dump_file(place, "web", std::nullopt, 2, t0);
  REQUIRE(second.has_value());
  CHECK(second->path == place / "web-20270115T080000Z.1.core");
  // Another VM whose name starts the same is not counted, nor touched.
  auto other = vmm::create_dump_file(place, "web-1", std::nullopt, 2, t0 + 1s);
  REQUIRE(other.has_value());
  auto third = vmm::create_dump_file(place, "web", std::nullopt, 2, t0 + 2s);
  REQUIRE(third.has_value());
  CHECK(vmm::dumps_of(place, "web") ==
        std::vector<std::filesystem::path>{second->path, third->path});
  CHECK(vmm::dumps_of(place, "web-1") == std::vector<std::filesystem::path>{other->path});
  // None kept: no dumps at all, said as a limit.
  auto none = vmm::create_dump_file(place, "db", std::nullopt, 0, t0);
  REQUIRE_FALSE(none.has_value());
  CHECK(none.error().kind == ErrorKind::limit);
}
