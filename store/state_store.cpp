#include "store/state_store.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <set>

#include "store/record_file.hpp"

namespace crosvisor::store {
namespace {

namespace fs = std::filesystem;
constexpr const char* kExtension = ".rec";

std::string random_token() {
  std::random_device entropy;
  std::uniform_int_distribution<std::uint64_t> any;
  char text[17];
  std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(any(entropy)));
  return text;
}

// Moves a record that could not be read into quarantine/, named for where it came from.
fs::path quarantine(const fs::path& store, const fs::path& file) {
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  const fs::path relative = file.lexically_relative(store);
  std::string flat;
  for (const auto& part : relative)
    flat += (flat.empty() ? "" : "_") + part.string();
  const fs::path aside = store / "quarantine" / (flat + "." + std::to_string(now));
  std::error_code ec;
  fs::create_directories(aside.parent_path(), ec);
  fs::rename(file, aside, ec);
  return ec ? file : aside;
}

// Every record file under `kind`/<uid>/, temporaries of interrupted writes removed on the way.
std::vector<fs::path> record_files(const fs::path& root) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file())
      continue;
    const std::string name = it->path().filename().string();
    if (name.starts_with(kTemporaryPrefix)) {
      std::error_code ignored;
      fs::remove(it->path(), ignored);
    } else if (it->path().extension() == kExtension) {
      files.push_back(it->path());
    }
  }
  return files;
}

template <class Record, class Parse>
void load_kind(const fs::path& store, const fs::path& root, Parse parse,
               std::vector<Record>& records, std::vector<StoreProblem>& problems) {
  for (const auto& file : record_files(root)) {
    auto json = read_record(file);
    if (!json) {
      if (json.error().kind == ErrorKind::invalid_config)
        problems.push_back({quarantine(store, file), json.error().message + " (moved aside)"});
      else
        problems.push_back({file, json.error().message});
      continue;
    }
    auto record = parse(*json);
    if (!record) {
      const auto aside = quarantine(store, file);
      problems.push_back({aside, file.string() + ": " + record.error().message + " (moved aside)"});
      continue;
    }
    records.push_back(std::move(*record));
  }
}

}  // namespace

fs::path StateStore::fleet_file(std::uint32_t owner, const std::string& fleet) const {
  return dir_ / "fleets" / std::to_string(owner) / (fleet + kExtension);
}

fs::path StateStore::vm_file(std::uint32_t owner, const std::string& vm) const {
  const std::string who = owner == kDaemonOwned ? "daemon" : std::to_string(owner);
  return dir_ / "vms" / who / (vm + kExtension);
}

fs::path StateStore::network_file(std::uint32_t owner, const std::string& network) const {
  return dir_ / "networks" / std::to_string(owner) / (network + kExtension);
}

fs::path StateStore::fresh_run_dir() const {
  return dir_ / "run" / random_token();
}

Expected<fs::path> StateStore::make_run_dir() const {
  const fs::path parent = dir_ / "run";
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec)
    return make_error(ErrorKind::io, "create " + parent.string() + ": " + ec.message());
  for (int attempt = 0; attempt < 8; ++attempt) {
    fs::path dir = parent / random_token();
    if (::mkdir(dir.c_str(), 0700) == 0)
      return dir;
    if (errno != EEXIST)
      return std::unexpected(errno_error(ErrorKind::io, "mkdir " + dir.string(), errno));
  }
  return make_error(ErrorKind::io, "no free run directory name under " + parent.string());
}

Expected<void> StateStore::save(const FleetRecord& record) const {
  return write_record(fleet_file(record.owner_uid, record.name), to_json(record));
}

Expected<void> StateStore::save(const VmRecord& record) const {
  return write_record(vm_file(record.owner_uid, record.name), to_json(record));
}

Expected<void> StateStore::save(const NetworkRecord& record) const {
  return write_record(network_file(record.owner_uid, record.name), to_json(record));
}

Expected<void> StateStore::remove_fleet(std::uint32_t owner, const std::string& fleet) const {
  return remove_record(fleet_file(owner, fleet));
}

Expected<void> StateStore::remove_vm(std::uint32_t owner, const std::string& vm) const {
  return remove_record(vm_file(owner, vm));
}

Expected<void> StateStore::remove_network(std::uint32_t owner, const std::string& network) const {
  return remove_record(network_file(owner, network));
}

LoadedState StateStore::load() const {
  LoadedState state;
  load_kind(dir_, dir_ / "fleets", fleet_record_from, state.fleets, state.problems);
  load_kind(dir_, dir_ / "vms", vm_record_from, state.vms, state.problems);
  load_kind(dir_, dir_ / "networks", network_record_from, state.networks, state.problems);
  return state;
}

std::size_t StateStore::remove_unused_run_dirs(
    const std::vector<VmRecord>& kept, const std::vector<NetworkRecord>& kept_networks) const {
  std::set<fs::path> named;
  for (const auto& vm : kept)
    named.insert(vm.run_dir.lexically_normal());
  for (const auto& network : kept_networks)
    named.insert(network.dir.lexically_normal());
  std::size_t removed = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir_ / "run", ec), end; !ec && it != end; it.increment(ec)) {
    if (named.count(it->path().lexically_normal()) != 0)
      continue;
    std::error_code ignored;
    fs::remove_all(it->path(), ignored);
    ++removed;
  }
  return removed;
}

}  // namespace crosvisor::store
