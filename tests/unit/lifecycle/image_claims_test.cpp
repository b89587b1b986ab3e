#include "lifecycle/image_claims.hpp"

#include <catch2/catch.hpp>

#include "support/temp_dir.hpp"

using namespace crosvisor;

namespace {

VmSpec with_disks(std::vector<std::pair<std::filesystem::path, bool>> disks) {
  VmSpec spec;
  spec.name = "v";
  for (auto& [path, writable] : disks)
    spec.disks.push_back(RawDisk{path, writable});
  return spec;
}

}  // namespace

TEST_CASE("an image is written by one VM at a time, read by many, and known by its inode") {
  test::TempDir dir;
  const auto image = dir.write("data.img", std::string(4096, 'd'));
  const auto other = dir.write("other.img", std::string(4096, 'o'));
  const auto alias = dir / "alias.img";
  std::filesystem::create_hard_link(image, alias);
  lifecycle::ImageClaims claims;

  REQUIRE_FALSE(claims.claim(1, 1000, "writer", lifecycle::images_of(with_disks({{image, true}}))));
  // Another path to the same inode, writable or not, by the same user or another.
  const auto second =
      claims.claim(2, 1000, "second", lifecycle::images_of(with_disks({{alias, true}})));
  REQUIRE(second);
  CHECK(second->kind == ErrorKind::conflict);
  CHECK_THAT(second->message, Catch::Contains("disk 0 " + alias.string()) &&
                                  Catch::Contains("is already written by VM writer"));
  const auto reader =
      claims.claim(3, 1001, "reader", lifecycle::images_of(with_disks({{image, false}})));
  REQUIRE(reader);
  CHECK_THAT(reader->message, Catch::Contains("already written by another running VM"));
  // A refused claim takes nothing: its other image stays free.
  REQUIRE(claims.claim(4, 1000, "both",
                       lifecycle::images_of(with_disks({{other, true}, {image, false}}))));
  CHECK_FALSE(claims.claim(5, 1000, "other", lifecycle::images_of(with_disks({{other, true}}))));

  claims.release(1);
  // Readers share; a writer then waits for every reader to go.
  CHECK_FALSE(claims.claim(6, 1000, "r1", lifecycle::images_of(with_disks({{image, false}}))));
  CHECK_FALSE(claims.claim(7, 1001, "r2", lifecycle::images_of(with_disks({{alias, false}}))));
  const auto writer = claims.claim(8, 1000, "w", lifecycle::images_of(with_disks({{image, true}})));
  REQUIRE(writer);
  CHECK_THAT(writer->message, Catch::Contains("is already read by VM r1"));
  claims.release(6);
  CHECK(claims.claim(8, 1000, "w", lifecycle::images_of(with_disks({{image, true}}))));
  claims.release(7);
  CHECK_FALSE(claims.claim(8, 1000, "w", lifecycle::images_of(with_disks({{image, true}}))));
}

TEST_CASE("one VM may read an image twice but not write one it also uses elsewhere") {
  test::TempDir dir;
  const auto image = dir.write("data.img", std::string(4096, 'd'));
  lifecycle::ImageClaims claims;
  CHECK_FALSE(claims.claim(1, 0, "twice",
                           lifecycle::images_of(with_disks({{image, false}, {image, false}}))));
  const auto both = claims.claim(2, 0, "mixed",
                                 lifecycle::images_of(with_disks({{image, false}, {image, true}})));
  REQUIRE(both);
  CHECK(both->kind == ErrorKind::invalid_config);
  CHECK_THAT(both->message, Catch::Contains("disk 1") && Catch::Contains("same image as disk 0"));
  // A partition of a composite counts as well.
  VmSpec composite;
  composite.name = "c";
  composite.disks.push_back(CompositeDisk{{{"data", image, true}}});
  const auto partition = claims.claim(3, 0, "c", lifecycle::images_of(composite));
  REQUIRE(partition);
  CHECK_THAT(partition->message, Catch::Contains("disk 0 partition \"data\"") &&
                                     Catch::Contains("already read by VM twice"));
}
