// Building a composite disk must cost the same whatever the partitions hold: it writes metadata
// (GPT header and footer, filler, descriptors) and never reads or copies partition data. This
// scenario times `vm composite`'s builder over tiny partitions (the baseline) and over multi-GiB
// sparse ones, in the same run, and reports the ratio.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "bench/bench.hpp"
#include "disk/composite_files.hpp"

namespace crosvisor::bench {
namespace {

std::filesystem::path make_sparse(const std::filesystem::path& path, std::uint64_t size) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || ftruncate(fd, static_cast<off_t>(size)) != 0)
    throw std::runtime_error("create " + path.string());
  ::close(fd);
  return path;
}

// Median wall time of `runs` builds of a composite disk over `sizes`.
double median_build_ms(const std::filesystem::path& dir, const std::string& name,
                       const std::vector<std::uint64_t>& sizes, int runs) {
  std::vector<disk::PartitionFile> partitions;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    const auto path = make_sparse(dir / (name + "-p" + std::to_string(i) + ".img"), sizes[i]);
    // Writable partitions must be 4 KiB aligned; odd sizes go in read-only (with a filler).
    partitions.push_back({"part" + std::to_string(i), path, sizes[i] % 4096 == 0, std::nullopt});
  }
  std::vector<double> times;
  for (int run = 0; run < runs; ++run) {
    const auto out = dir / (name + ".img");
    const auto start = std::chrono::steady_clock::now();
    auto outputs = disk::create_composite_files(out, partitions);
    const auto end = std::chrono::steady_clock::now();
    if (!outputs)
      throw std::runtime_error(outputs.error().message);
    times.push_back(std::chrono::duration<double, std::milli>(end - start).count());
    for (const auto& p :
         {outputs->composite, outputs->header, outputs->footer, outputs->filler, outputs->vmdk}) {
      std::filesystem::remove(p);
    }
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

int composite_scenario(const Options& options) {
  const auto dir = options.work_dir / "composite";
  std::filesystem::create_directories(dir);
  const int runs = options.quick ? 5 : 25;
  constexpr std::uint64_t GiB = std::uint64_t{1} << 30;
  const double tiny = median_build_ms(dir, "tiny", {4096, 8192, 4000}, runs);
  const double huge = median_build_ms(dir, "huge", {16 * GiB, 32 * GiB, 8 * GiB + 100}, runs);
  std::filesystem::remove_all(dir);
  std::printf("composite: 3 partitions of 16 KiB total: %.3f ms (median of %d)\n", tiny, runs);
  std::printf("composite: 3 sparse partitions of 56 GiB total: %.3f ms (median of %d)\n", huge,
              runs);
  std::printf("composite: ratio huge/tiny = %.2f (1.0 = independent of partition size)\n",
              huge / tiny);
  return 0;
}

}  // namespace crosvisor::bench
