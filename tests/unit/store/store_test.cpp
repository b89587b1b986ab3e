#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <random>
#include <thread>

#include "process/open_as.hpp"
#include "process/proc_identity.hpp"
#include "store/record_file.hpp"
#include "store/state_store.hpp"
#include "support/temp_dir.hpp"

using namespace crosvisor;
using json = nlohmann::json;

namespace {

std::string slurp(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void overwrite(const std::filesystem::path& file, const std::string& text) {
  std::ofstream(file, std::ios::binary | std::ios::trunc) << text;
}

std::size_t temporaries_in(const std::filesystem::path& dir) {
  std::size_t n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    n += entry.path().filename().string().starts_with(store::kTemporaryPrefix);
  return n;
}

store::VmRecord sample_vm() {
  store::VmRecord vm;
  vm.name = "web-0";
  vm.fleet = "shop";
  vm.owner_uid = 1000;
  vm.boot_id = "boot";
  vm.pid = 1234;
  vm.start_time = 99;
  vm.args = {"-M", "microvm"};
  vm.cid = 2049;
  vm.vmm = "qemu";
  vm.run_dir = "/var/lib/crosvisor/run/0011";
  vm.started_at_ms = 1700000000000;
  vm.ready = true;
  vm.restarts = 2;
  vm.recent_restarts_ms = {1700000001000, 1700000002000};
  return vm;
}

}  // namespace

TEST_CASE("a record reads back as written, and each kind of damage is told and refused") {
  test::TempDir dir;
  const auto file = dir / "a.rec";
  REQUIRE(store::write_record(file, json{{"name", "shop"}, {"n", 3}}));
  auto back = store::read_record(file);
  REQUIRE(back);
  CHECK((*back)["name"] == "shop");
  CHECK(temporaries_in(dir.path()) == 0);
  const std::string good = slurp(file);

  overwrite(file, good.substr(0, good.size() - 3));  // truncated
  auto truncated = store::read_record(file);
  REQUIRE_FALSE(truncated);
  CHECK(truncated.error().kind == ErrorKind::invalid_config);
  CHECK_THAT(truncated.error().message, Catch::Contains("truncated"));

  std::string flipped = good;
  flipped[flipped.size() - 4] ^= 0x01;  // one bit of the body
  overwrite(file, flipped);
  CHECK_THAT(store::read_record(file).error().message, Catch::Contains("checksum"));

  overwrite(file, "");
  CHECK_THAT(store::read_record(file).error().message, Catch::Contains("empty"));
  overwrite(file, "{\"name\": \"hand-written\"}\n");
  CHECK_THAT(store::read_record(file).error().message, Catch::Contains("no record header"));
  CHECK(store::read_record(dir / "missing.rec").error().kind == ErrorKind::io);
}

TEST_CASE("records keep every field, and a record missing one says which") {
  const auto vm = sample_vm();
  auto back = store::vm_record_from(store::to_json(vm));
  REQUIRE(back);
  CHECK(back->args == vm.args);
  CHECK(back->start_time == 99);
  CHECK(back->run_dir == vm.run_dir);
  CHECK(back->ready);
  CHECK(back->recent_restarts_ms == vm.recent_restarts_ms);
  // Its interfaces; a record from before they were kept has none, and is still read.
  auto with_nic = vm;
  with_nic.nics.push_back({"lan", "10.0.7.2", "02:00:00:00:00:01", "tap0"});
  auto nic_back = store::vm_record_from(store::to_json(with_nic));
  REQUIRE(nic_back);
  REQUIRE(nic_back->nics.size() == 1);
  CHECK(nic_back->nics[0].address == "10.0.7.2");
  CHECK(nic_back->nics[0].tap == "tap0");
  json older = store::to_json(vm);
  older.erase("nics");
  REQUIRE(store::vm_record_from(older));
  CHECK(store::vm_record_from(older)->nics.empty());
  older["nics"] = json::array({json{{"network", "lan"}}});
  CHECK_THAT(store::vm_record_from(older).error().message, Catch::Contains("'address'"));

  json partial = store::to_json(vm);
  partial.erase("start_time");
  CHECK_THAT(store::vm_record_from(partial).error().message, Catch::Contains("'start_time'"));
  partial = store::to_json(vm);
  partial["pid"] = "x";
  CHECK_THAT(store::vm_record_from(partial).error().message, Catch::Contains("wrong type"));
  // Numbers a field cannot hold are refused, not cast (1e33 into an int was undefined behaviour).
  for (const json& number : {json(1.6e33), json(2.5), json(1ull << 40)}) {
    partial["pid"] = number;
    CHECK_THAT(store::vm_record_from(partial).error().message,
               Catch::Contains("'pid' is not a whole number in range"));
  }
  partial = store::to_json(vm);
  partial["recent_restarts_ms"] = json::array({1, 1.6e33});
  CHECK_THAT(store::vm_record_from(partial).error().message,
             Catch::Contains("'recent_restarts_ms' is not a whole number in range"));
}

TEST_CASE("a network record keeps its dnsmasq's identity and its directory") {
  store::NetworkRecord network;
  network.name = "lan";
  network.fleet = "shop";
  network.owner_uid = 1000;
  network.boot_id = "b";
  network.subnet = "10.0.7.0/24";
  network.dns = true;
  network.dir = "/var/lib/crosvisor/run/00ff";
  network.dnsmasq_pid = 4321;
  network.dnsmasq_start_time = 77;
  network.dnsmasq_args = {"/usr/sbin/dnsmasq", "--keep-in-foreground"};
  auto back = store::network_record_from(store::to_json(network));
  REQUIRE(back);
  CHECK(back->subnet == network.subnet);
  CHECK(back->dns);
  CHECK(back->dir == network.dir);
  CHECK(back->dnsmasq_pid == 4321);
  CHECK(back->dnsmasq_start_time == 77);
  CHECK(back->dnsmasq_args == network.dnsmasq_args);
  json partial = store::to_json(network);
  partial.erase("dnsmasq_args");
  CHECK_THAT(store::network_record_from(partial).error().message,
             Catch::Contains("network record") && Catch::Contains("'dnsmasq_args'"));

  test::TempDir dir;
  store::StateStore state(dir.path());
  REQUIRE(state.save(network));
  CHECK(state.network_file(1000, "lan") == dir.path() / "networks" / "1000" / "lan.rec");
  auto loaded = state.load();
  REQUIRE(loaded.networks.size() == 1);
  CHECK(loaded.networks[0].name == "lan");
  REQUIRE(state.remove_network(1000, "lan"));
  CHECK(state.load().networks.empty());
}

TEST_CASE("the store loads what it saved and moves a damaged record aside, reporting it once") {
  test::TempDir dir;
  store::StateStore state(dir.path());
  store::FleetRecord fleet;
  fleet.name = "shop";
  fleet.owner_uid = 1000;
  fleet.owner_gid = 1000;
  fleet.persistent = true;
  fleet.fleet = json{{"name", "shop"}};
  REQUIRE(state.save(fleet));
  fleet.name = "lab";
  REQUIRE(state.save(fleet));
  REQUIRE(state.save(sample_vm()));
  auto loaded = state.load();
  CHECK(loaded.fleets.size() == 2);
  CHECK(loaded.vms.size() == 1);
  CHECK(loaded.problems.empty());

  overwrite(state.fleet_file(1000, "lab"), "crosvisor-record 1 5 00000000\n{}");
  // A write that was killed before its rename leaves a temporary: never read, removed.
  overwrite(state.fleet_file(1000, "x").parent_path() / ".tmp-shop.rec.1.0", "half");
  loaded = state.load();
  REQUIRE(loaded.fleets.size() == 1);
  CHECK(loaded.fleets[0].name == "shop");
  REQUIRE(loaded.problems.size() == 1);
  CHECK_THAT(loaded.problems[0].what, Catch::Contains("lab.rec") && Catch::Contains("moved aside"));
  CHECK(loaded.problems[0].file.parent_path().filename() == "quarantine");
  CHECK(std::filesystem::exists(loaded.problems[0].file));
  CHECK(temporaries_in(state.fleet_file(1000, "x").parent_path()) == 0);
  CHECK(state.load().problems.empty());  // reported once

  // A VM of crosvisord's command line is the daemon's own: nobody's uid.
  auto own = sample_vm();
  own.owner_uid = store::kDaemonOwned;
  own.fleet.clear();
  REQUIRE(state.save(own));
  CHECK(std::filesystem::exists(dir.path() / "vms" / "daemon" / (own.name + ".rec")));
  CHECK(state.load().vms.size() == 2);
  REQUIRE(state.remove_vm(store::kDaemonOwned, own.name));

  REQUIRE(state.remove_fleet(1000, "shop"));
  REQUIRE(state.remove_vm(1000, "web-0"));
  REQUIRE(state.remove_vm(1000, "never-was"));
  loaded = state.load();
  CHECK(loaded.fleets.empty());
  CHECK(loaded.vms.empty());
}

TEST_CASE("a run directory no record names is removed, a named one stays") {
  test::TempDir dir;
  store::StateStore state(dir.path());
  auto kept = state.make_run_dir();
  auto stale = state.make_run_dir();
  REQUIRE(kept);
  REQUIRE(stale);
  CHECK(*kept != *stale);
  CHECK((std::filesystem::status(*kept).permissions() & std::filesystem::perms::all) ==
        std::filesystem::perms::owner_all);
  auto vm = sample_vm();
  vm.run_dir = *kept;
  CHECK(state.remove_unused_run_dirs({vm}) == 1);
  CHECK(std::filesystem::exists(*kept));
  CHECK_FALSE(std::filesystem::exists(*stale));
  // A network's directory is kept by its record alone.
  auto network_dir = state.make_run_dir();
  REQUIRE(network_dir);
  store::NetworkRecord network;
  network.dir = *network_dir;
  CHECK(state.remove_unused_run_dirs({vm}, {network}) == 0);
  CHECK(state.remove_unused_run_dirs({vm}) == 1);
  CHECK_FALSE(std::filesystem::exists(*network_dir));
}

// The store's promise under the worst timing: a writer killed with SIGKILL at a random moment,
// many times over, always leaves a record that reads back as one of the versions written whole.
// The moments are spread over one write's duration, measured first (sanitized builds write
// several times slower), after zero, one or two writes the child has reported done.
TEST_CASE("a record survives kill -9 at any point of its write, 200 times over") {
  test::TempDir dir;
  store::StateStore state(dir.path());
  const auto file = state.fleet_file(0, "fleet");
  // A large record, so that the kill lands inside a write as often as between writes.
  const std::string padding(256 * 1024, 'x');
  const auto started = std::chrono::steady_clock::now();
  REQUIRE(store::write_record(file, json{{"version", 0}, {"padding", padding}}));
  const auto write_us = std::max<long>(50, std::chrono::duration_cast<std::chrono::microseconds>(
                                               std::chrono::steady_clock::now() - started)
                                               .count());
  std::mt19937 random(42);
  int old_seen = 0;
  int new_seen = 0;
  for (int trial = 1; trial <= 200; ++trial) {
    int done[2];
    REQUIRE(::pipe(done) == 0);
    const pid_t writer = ::fork();
    REQUIRE(writer >= 0);
    if (writer == 0) {
      ::close(done[0]);
      for (int version = trial * 1000;; ++version) {
        if (store::write_record(file, json{{"version", version}, {"padding", padding}}))
          (void)!::write(done[1], "w", 1);
      }
    }
    ::close(done[1]);
    const int writes = static_cast<int>(random() % 3);
    char byte;
    for (int i = 0; i < writes && ::read(done[0], &byte, 1) == 1; ++i) {
    }
    std::this_thread::sleep_for(std::chrono::microseconds(random() % (2 * write_us)));
    ::kill(writer, SIGKILL);
    ::waitpid(writer, nullptr, 0);
    ::close(done[0]);
    auto back = store::read_record(file);
    INFO("trial " << trial);
    REQUIRE(back);
    REQUIRE((*back)["padding"] == padding);
    ((*back)["version"].get<int>() >= trial * 1000 ? new_seen : old_seen)++;
  }
  // Both outcomes happened: the kills did land at different points.
  CHECK(new_seen > 0);
  CHECK(old_seen > 0);
  CHECK(temporaries_in(file.parent_path()) > 0);  // left by kills between create and rename
  CHECK(state.load().problems.size() == 1);       // the record itself: not a fleet record
  CHECK(temporaries_in(file.parent_path()) == 0);
}

TEST_CASE("a full disk fails the write with a clear error and leaves the old record whole") {
  test::TempDir dir;
  // A 64 KiB tmpfs in a mount namespace of a child's own: a real ENOSPC, nothing left mounted.
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    const auto small = dir / "small";
    std::filesystem::create_directory(small);
    if (::unshare(CLONE_NEWNS) != 0 ||
        ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("tmpfs", small.c_str(), "tmpfs", 0, "size=64k") != 0)
      _exit(10);
    const auto file = small / "fleet.rec";
    if (!store::write_record(file, json{{"version", 1}}))
      _exit(11);
    auto full =
        store::write_record(file, json{{"version", 2}, {"padding", std::string(256 * 1024, 'x')}});
    if (full || full.error().kind != ErrorKind::io ||
        full.error().message.find("No space left") == std::string::npos)
      _exit(12);
    auto back = store::read_record(file);
    if (!back || (*back)["version"] != 1)
      _exit(13);
    if (temporaries_in(small) != 0)
      _exit(14);
    _exit(0);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("a process is recognised by pid, start time and arguments, never by its pid alone") {
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::execl("/bin/sleep", "sleep", "30", nullptr);
    _exit(127);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto identity = process::identify(child);
  REQUIRE(identity);
  CHECK(identity->args == std::vector<std::string>{"30"});
  CHECK_FALSE(process::boot_id().empty());
  CHECK(process::open_same_process(*identity));

  auto recycled = *identity;  // what a record of a process that had this pid before says
  recycled.start_time -= 1;
  auto refused = process::open_same_process(recycled);
  REQUIRE_FALSE(refused);
  CHECK_THAT(refused.error().message, Catch::Contains("another process"));
  auto other_args = *identity;
  other_args.args = {"-M", "microvm"};
  CHECK_THAT(process::open_same_process(other_args).error().message,
             Catch::Contains("other arguments"));

  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  CHECK_THAT(process::open_same_process(*identity).error().message,
             Catch::Contains("no longer runs"));
}

TEST_CASE("files are opened with the owner's rights, never the caller's") {
  test::TempDir dir;
  std::filesystem::permissions(dir.path(), std::filesystem::perms::all);
  const auto readable = dir.write("readable", "hello");
  const auto secret = dir.write("secret", "root only");
  std::filesystem::permissions(
      readable, std::filesystem::perms::owner_read | std::filesystem::perms::others_read);
  std::filesystem::permissions(secret, std::filesystem::perms::owner_read);
  if (::geteuid() != 0) {
    auto refused = process::open_as({65534, 65534}, {{readable, false}});
    REQUIRE_FALSE(refused);
    CHECK(refused.error().kind == ErrorKind::permission);
    return;
  }
  const auto fifo = dir / "fifo";  // where an image was: must not hold the helper
  REQUIRE(::mkfifo(fifo.c_str(), 0666) == 0);
  auto opened = process::open_as(
      {65534, 65534},
      {{readable, false}, {secret, false}, {readable, true}, {dir / "none", false}, {fifo, false}});
  REQUIRE(opened);
  REQUIRE(opened->size() == 5);
  CHECK_THAT((*opened)[4].error().message, Catch::Contains("not a regular file or block device"));
  REQUIRE((*opened)[0]);
  char text[8] = {};
  CHECK(::read((*opened)[0]->get(), text, sizeof(text)) == 5);
  CHECK(std::string(text) == "hello");
  CHECK(::fcntl((*opened)[0]->get(), F_GETFD) & FD_CLOEXEC);
  REQUIRE_FALSE((*opened)[1]);  // root could, nobody cannot
  CHECK((*opened)[1].error().kind == ErrorKind::permission);
  CHECK_THAT((*opened)[1].error().message, Catch::Contains("secret") &&
                                               Catch::Contains("uid 65534") &&
                                               Catch::Contains("Permission denied"));
  CHECK_FALSE((*opened)[2]);  // readable, not writable, by others
  CHECK_THAT((*opened)[3].error().message, Catch::Contains("No such file"));
  // As root itself: what root may open.
  auto as_root = process::open_as({0, 0}, {{secret, false}});
  REQUIRE(as_root);
  CHECK((*as_root)[0]);
}
