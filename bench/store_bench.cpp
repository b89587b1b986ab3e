// The state store's price (docs/state.md): a record written crash-safely (temporary file,
// fdatasync, rename, directory fsync) against the same bytes written in place without a flush
// (what a store that trusts the page cache would do: fast, and torn by a crash), both on the disk
// that holds /var/tmp (a state directory lives on a disk, not on tmpfs). Then what a starting
// daemon pays to read a thousand VM records back.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <vector>

#include "bench/bench.hpp"
#include "store/record_file.hpp"
#include "store/state_store.hpp"

namespace crosvisor::bench {
namespace {

using Clock = std::chrono::steady_clock;

// A fleet record of about the size of a ten-VM fleet's (8 KiB of JSON).
nlohmann::json fleet_body(int version) {
  nlohmann::json vms = nlohmann::json::array();
  for (int i = 0; i < 10; ++i)
    vms.push_back(
        {{"vm", {{"name", "web-" + std::to_string(i)}, {"padding", std::string(700, 'x')}}}});
  return {{"name", "shop"}, {"version", version}, {"vms", vms}};
}

}  // namespace

int store_scenario(const Options& options) {
  const auto dir =
      std::filesystem::path("/var/tmp") / ("crosvisor-bench-store-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const int writes = options.quick ? 20 : 200;
  std::vector<double> safe_us;
  std::vector<double> plain_us;
  for (int i = 0; i < writes; ++i) {
    const std::string text = fleet_body(i).dump();
    // Paired, alternating: both see the same disk at the same moment.
    auto begin = Clock::now();
    {
      std::ofstream out(dir / "plain.json", std::ios::trunc);
      out << text;
    }
    plain_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - begin).count());
    begin = Clock::now();
    if (!store::write_record(dir / "fleet.rec", fleet_body(i))) {
      std::fprintf(stderr, "store: a write failed\n");
      return 1;
    }
    safe_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - begin).count());
  }
  std::printf("store: %d writes of an 8 KiB fleet record on /var/tmp's disk\n", writes);
  std::printf("  in place, no flush (baseline): median %8.1f us\n", median(plain_us));
  std::printf("  crash-safe record            : median %8.1f us  (%.1fx)\n", median(safe_us),
              median(safe_us) / median(plain_us));

  // A daemon's start: a thousand VM records read back and checked.
  store::StateStore state(dir / "state");
  const int records = options.quick ? 100 : 1000;
  for (int i = 0; i < records; ++i) {
    store::VmRecord vm;
    vm.name = "vm-" + std::to_string(i);
    vm.fleet = "big";
    vm.args = std::vector<std::string>(40, "--some-argument=value");
    vm.run_dir = dir / "state/run" / vm.name;
    (void)store::write_record(state.vm_file(0, vm.name), store::to_json(vm));
  }
  const auto begin = Clock::now();
  const auto loaded = state.load();
  const double load_ms = std::chrono::duration<double, std::milli>(Clock::now() - begin).count();
  std::printf("  load %zu VM records at start : %8.1f ms (%.1f us each)\n", loaded.vms.size(),
              load_ms,
              load_ms * 1000 / static_cast<double>(std::max<std::size_t>(1, loaded.vms.size())));
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  return loaded.vms.size() == static_cast<std::size_t>(records) ? 0 : 1;
}

}  // namespace crosvisor::bench
