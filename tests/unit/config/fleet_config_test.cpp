#include "config/fleet_config.hpp"

#include <catch2/catch.hpp>

#include "support/temp_dir.hpp"

using namespace crosvisor;
using namespace crosvisor::config;

namespace {
std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    const auto end = text.find('\n', start);
    lines.push_back(text.substr(start, end - start));
    if (end == std::string::npos)
      break;
    start = end + 1;
  }
  return lines;
}
// Whether one of `problems` is placed in `file` and says `text`.
bool has_problem(const std::vector<std::string>& problems, const std::filesystem::path& file,
                 const std::string& text) {
  return std::any_of(problems.begin(), problems.end(), [&](const std::string& line) {
    return line.find(text) != std::string::npos && line.rfind(file.string() + ":", 0) == 0;
  });
}
}  // namespace

TEST_CASE("a fleet file: defaults, replicas from a name template, start order, restart policy") {
  test::TempDir dir;
  dir.write("vmlinuz", "kernel");
  dir.write("db.img", "db");
  const auto file = dir.write("shop.toml", R"(
[fleet]
concurrency = 3

[defaults]
kernel = "vmlinuz"
params = "console=ttyS0"
debug = "full"

[[vm]]
name = "db"
disks = [ { path = "db.img", writable = true } ]
restart = "always"

[[vm]]
name = "web-{index}"
count = 3
after = ["db"]
restart = "on-failure"
max_restarts = 5
window_s = 30
backoff_s = 0.5
params = "console=ttyS0 quiet"
)");
  auto fleet = load_fleet_file(file);
  REQUIRE(fleet.has_value());
  CHECK(fleet->name == "shop");
  CHECK(fleet->concurrency == 3);
  REQUIRE(fleet->vms.size() == 4);
  CHECK(fleet->vms[0].spec.name == "db");
  CHECK(fleet->vms[0].restart.policy == RestartPolicy::always);
  CHECK(fleet->vms[0].spec.debug == DebugLevel::full);
  CHECK(fleet->vms[1].spec.name == "web-0");
  CHECK(fleet->vms[3].spec.name == "web-2");
  CHECK(fleet->vms[3].spec.params == "console=ttyS0 quiet");  // its own key wins
  CHECK(fleet->vms[3].spec.kernel == dir / "vmlinuz");        // from [defaults]
  CHECK(fleet->vms[3].after == std::vector<std::string>{"db"});
  CHECK(fleet->vms[3].restart.max_restarts == 5);
  CHECK(fleet->vms[3].restart.window == std::chrono::milliseconds(30'000));
  CHECK(fleet->vms[3].restart.backoff == std::chrono::milliseconds(500));
  CHECK(fleet->vms[3].group == "web-{index}");
}

TEST_CASE("a fleet file with five different mistakes gets five errors, with places") {
  test::TempDir dir;
  dir.write("vmlinuz", "kernel");
  dir.write("shared.img", "data");
  const auto file = dir.write("broken.toml", R"([defaults]
kernel = "vmlinuz"

[[vm]]
name = "a"
cpu = 2
disks = [ { path = "shared.img", writable = true } ]

[[vm]]
name = "b"
initrd = "missing.img"
disks = [ { path = "shared.img", writable = true } ]

[[vm]]
name = "a"

[[vm]]
name = "c"
after = ["nobody"]
)");
  auto fleet = load_fleet_file(file);
  REQUIRE_FALSE(fleet.has_value());
  const auto problems = lines_of(fleet.error().message);
  INFO(fleet.error().message);
  CHECK(problems.size() == 5);
  const auto has = [&](const std::string& text) { return has_problem(problems, file, text); };
  CHECK(has("key 'vm[0].cpu': unknown key; did you mean 'cpus'?"));
  CHECK(has("key 'vm[1].initrd': " + (dir / "missing.img").string() + ": no such file"));
  CHECK(has("is writable in a and in b"));
  CHECK(has("key 'vm[2].name': the name 'a' is used twice"));
  CHECK(has("key 'vm[3].after': 'nobody' names no VM of this fleet"));
}

TEST_CASE("fleet start orders with a cycle, bad templates and out-of-range CIDs are refused") {
  test::TempDir dir;
  dir.write("vmlinuz", "kernel");
  const auto file = dir.write("cycle.toml", R"([defaults]
kernel = "vmlinuz"
[[vm]]
name = "a"
after = ["b"]
[[vm]]
name = "b"
after = ["a"]
[[vm]]
name = "web"
count = 2
[[vm]]
name = "x-{index}"
[[vm]]
name = "low"
cid = 100
[[vm]]
name = "fixed-{index}"
count = 2
cid = 3000
)");
  auto fleet = load_fleet_file(file);
  REQUIRE_FALSE(fleet.has_value());
  const std::string& text = fleet.error().message;
  CHECK_THAT(text, Catch::Contains("start order has a cycle: a -> b -> a"));
  CHECK_THAT(text, Catch::Contains("with 'count', the name must contain {index}"));
  CHECK_THAT(text, Catch::Contains("{index} needs 'count'"));
  CHECK_THAT(text, Catch::Contains("CID 100 is outside the fleet's range 2048..65535"));
  CHECK_THAT(text, Catch::Contains("CID 3000 is also fixed-0's"));
}

TEST_CASE(
    "a mistake in the defaults table is reported once, at its own line, and merged values keep "
    "theirs") {
  test::TempDir dir;
  dir.write("k", "kernel");
  const auto file = dir.write("t.toml", R"([fleet]
name = "t"

[defaults]
kernel = "k"
memory_mib = 5
cpuz = 1

[[vm]]
name = "a"

[[vm]]
name = "b"
cpus = 300

[[vm]]
name = "c-{index}"
count = 2
)");
  auto fleet = load_fleet_file(file);
  REQUIRE_FALSE(fleet.has_value());
  const auto at = file.string();
  CHECK(lines_of(fleet.error().message) ==
        std::vector<std::string>{
            at + ":6:14: key 'defaults.memory_mib': must be between 16 and 1048576, found 5",
            at + ":7:1: key 'defaults.cpuz': unknown key; did you mean 'cpus'?",
            at + ":14:8: key 'vm[1].cpus': must be between 1 and 256, found 300"});
}

TEST_CASE("a VM file given as a fleet file, and a fleet file given as a VM file, say so") {
  test::TempDir dir;
  dir.write("k", "kernel");
  const auto vm_file = dir.write("hello.toml", "name = \"hello\"\nkernel = \"k\"\n");
  auto as_fleet = load_fleet_file(vm_file);
  REQUIRE_FALSE(as_fleet.has_value());
  CHECK(as_fleet.error().message == vm_file.string() +
                                        " is a VM file, not a fleet file: use `vm run " +
                                        vm_file.string() + "`, or put its keys under [[vm]]");
}

TEST_CASE(
    "a fleet that would expand to more than 10 000 VMs is refused at the count that does it") {
  test::TempDir dir;
  dir.write("k", "kernel");
  std::string text = "[defaults]\nkernel = \"k\"\n";
  for (int i = 0; i < 200; ++i)
    text += "[[vm]]\nname = \"g" + std::to_string(i) + "-{index}\"\ncount = 10000\n";
  const auto file = dir.write("huge.toml", text);
  auto fleet = load_fleet_file(file);
  REQUIRE_FALSE(fleet.has_value());
  CHECK(fleet.error().message == file.string() +
                                     ":8:9: key 'vm[1].count': the fleet would have 20000 VMs "
                                     "with these, more than the 10000 a fleet may have");
}

TEST_CASE("a fleet's networks: every mistake at its file:line:key, and a valid one read whole") {
  test::TempDir dir;
  dir.write("vmlinuz", "kernel");
  const auto good = dir.write("good.toml", R"([[network]]
name = "back"
subnet = "10.30.0.0/24"
dns = true

[[network]]
name = "front"

[defaults]
kernel = "vmlinuz"
networks = ["back"]

[[vm]]
name = "db"
networks = [ { name = "back", address = "10.30.0.10", mac = "02:00:00:00:00:10" }, "front" ]

[[vm]]
name = "web"
)");
  auto fleet = load_fleet_file(good);
  INFO((fleet ? "" : fleet.error().message));
  REQUIRE(fleet);
  REQUIRE(fleet->networks.size() == 2);
  CHECK(fleet->networks[0].dns);
  CHECK(to_string(*fleet->networks[0].subnet) == "10.30.0.0/24");
  CHECK_FALSE(fleet->networks[1].subnet);  // crosvisord picks one
  const auto& db = fleet->vms[0].spec;
  REQUIRE(db.nics.size() == 2);
  CHECK(to_string(*db.nics[0].address) == "10.30.0.10");
  CHECK(db.nics[1].network == "front");
  REQUIRE(fleet->vms[1].spec.nics.size() == 1);  // from [defaults]

  const auto bad = dir.write("bad.toml", R"([[network]]
name = "back"
subnet = "10.30.0.0/24"

[[network]]
name = "other"
subnet = "10.30.0.0/16"

[[network]]
name = "third"
subnet = "10.31.0.7/24"

[defaults]
kernel = "vmlinuz"

[[vm]]
name = "a"
networks = [ { name = "back", address = "10.40.0.2" } ]

[[vm]]
name = "b"
networks = [ "nowhere" ]

[[vm]]
name = "c"
networks = [ { name = "back", address = "10.30.0.5" } ]

[[vm]]
name = "d"
networks = [ { name = "back", address = "10.30.0.5" } ]
)");
  auto broken = load_fleet_file(bad);
  REQUIRE_FALSE(broken);
  const auto problems = lines_of(broken.error().message);
  INFO(broken.error().message);
  CHECK(problems.size() == 5);
  const auto has = [&](const std::string& text) { return has_problem(problems, bad, text); };
  CHECK(has("key 'network[1].subnet': 10.30.0.0/16 overlaps back's 10.30.0.0/24"));
  CHECK(has("key 'network[2].subnet'"));
  CHECK(has("key 'vm[0].networks': 10.40.0.2 is not a VM's address in back"));
  CHECK(has("key 'vm[1].networks': 'nowhere' names no [[network]] of this fleet"));
  CHECK(has("key 'vm[3].networks': 10.30.0.5 is also c's in back"));
}

TEST_CASE("a cluster fleet's VMs say where they may run and what their host's loss does") {
  test::TempDir dir;
  dir.write("vmlinuz", "kernel");
  dir.write("db.img", "db");
  const auto file = dir.write("spread.toml", R"(
[defaults]
kernel = "vmlinuz"
on_host_loss = "reschedule"

[[vm]]
name = "web-{index}"
count = 3
spread = true
hosts = ["h1", "h2", "h-3"]

[[vm]]
name = "cache"
on_host_loss = "wait"

[[vm]]
name = "db"
disks = [ { path = "db.img", writable = true } ]
on_host_loss = "wait"
)");
  auto fleet = load_fleet_file(file);
  REQUIRE(fleet);
  const auto& web = fleet->vms[0].placement;
  CHECK(web.spread);
  CHECK(web.hosts == std::vector<std::string>{"h1", "h2", "h-3"});
  CHECK(web.on_host_loss == OnHostLoss::reschedule);
  CHECK(fleet->vms[3].placement.on_host_loss == OnHostLoss::wait);
  CHECK(fleet->vms[4].placement.on_host_loss == OnHostLoss::wait);
  CHECK_FALSE(fleet->vms[3].placement.spread);

  // A writable disk's data is on its host: it waits, and asking otherwise is refused.
  const auto writer = dir.write("writer.toml", R"(
[[vm]]
name = "db"
kernel = "vmlinuz"
disks = [ { path = "db.img", writable = true } ]
)");
  auto waits = load_fleet_file(writer);
  REQUIRE(waits);
  CHECK(waits->vms[0].placement.on_host_loss == OnHostLoss::wait);
  const auto bad = dir.write("bad.toml", R"(
[[vm]]
name = "db"
kernel = "vmlinuz"
disks = [ { path = "db.img", writable = true } ]
on_host_loss = "reschedule"
hosts = ["H1", 7]
spread = "yes"
)");
  auto refused = load_fleet_file(bad);
  REQUIRE_FALSE(refused);
  const auto problems = lines_of(refused.error().message);
  INFO(refused.error().message);
  CHECK(has_problem(problems, bad,
                    "key 'vm[0].on_host_loss': a VM with a writable disk cannot be "
                    "rescheduled on another host"));
  CHECK(has_problem(problems, bad, "key 'vm[0].hosts[0]': must be a host name"));
  CHECK(has_problem(problems, bad, "key 'vm[0].hosts[1]': must be a host name"));
  CHECK(has_problem(problems, bad, "key 'vm[0].spread': expected true or false"));
}
