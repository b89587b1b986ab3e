#include "config/vm_config.hpp"

#include <fstream>
#include <sstream>

#include "config/toml_reader.hpp"
#include "core/debug_policy.hpp"
#include "crosvisor/vm_file.hpp"
#include "disk/composite_files.hpp"

namespace crosvisor::config {
namespace {

void read_ready(TableReader& vm, VmSpec& spec) {
  const toml::table* ready_table = vm.table("ready");
  if (ready_table == nullptr)
    return;
  TableReader ready(*ready_table, vm.dotted("ready"), vm.problems(), {});
  auto port = ready.integer("vsock_port", limits::kMinVsockPort, limits::kMaxVsockPort);
  if (port && ready_table->contains("console")) {
    vm.problems().add(ready_table->source(), vm.dotted("ready"),
                      "give either 'console' or 'vsock_port', not both");
  } else if (port) {
    spec.ready = VsockReady{static_cast<std::uint32_t>(*port)};
  }
  if (auto pattern = ready.string("console")) {
    if (pattern->empty()) {
      vm.problems().add(ready_table->source(), vm.dotted("ready.console"), "must not be empty");
    } else {
      spec.ready = ConsoleReady{*pattern};
    }
  } else if (ready_table->empty()) {
    vm.problems().add(ready_table->source(), vm.dotted("ready"),
                      "needs a condition, e.g. { console = \"login:\" }");
  }
  ready.finish();
}

// networks = ["back", { name = "front", address = "10.1.0.5", mac = "02:..." }]: each a network
// the VM joins (checked against the fleet's [[network]] tables, or by crosvisord for a VM file).
void read_networks(TableReader& vm, VmSpec& spec) {
  const toml::array* listed = vm.array("networks");
  if (listed == nullptr)
    return;
  if (listed->size() > kMaxNics) {
    vm.problems().add(listed->source(), vm.dotted("networks"),
                      "at most " + std::to_string(kMaxNics) + " networks per VM");
    return;
  }
  for (std::size_t i = 0; i < listed->size(); ++i) {
    const toml::node& item = *listed->get(i);
    const std::string where = vm.dotted("networks[" + std::to_string(i) + "]");
    NicSpec nic;
    if (auto name = item.value<std::string>()) {
      nic.network = *name;
    } else if (const auto* table = item.as_table()) {
      TableReader reader(*table, where, vm.problems(), vm.base_dir());
      nic.network = reader.string("name", true).value_or("");
      if (auto address = reader.string("address")) {
        nic.address = parse_ipv4(*address);
        if (!nic.address)
          vm.problems().add(table->get("address")->source(), where + ".address",
                            "'" + *address + "' is not an IPv4 address");
      }
      if (auto mac = reader.string("mac")) {
        nic.mac = parse_mac(*mac);
        if (!nic.mac || !nic.mac->unicast())
          vm.problems().add(table->get("mac")->source(), where + ".mac",
                            "'" + *mac + "' is not a unicast MAC address (xx:xx:xx:xx:xx:xx)");
      }
      reader.finish();
    } else {
      vm.problems().add(item.source(), where,
                        "a network's name, or { name = ..., address = ..., mac = ... }");
      continue;
    }
    if (nic.network.empty())
      continue;
    if (!is_valid_vm_name(nic.network)) {
      vm.problems().add(item.source(), where, "'" + nic.network + "' is not a network name");
      continue;
    }
    for (const auto& other : spec.nics) {
      if (other.network == nic.network)
        vm.problems().add(item.source(), where, "joins " + nic.network + " twice");
    }
    spec.nics.push_back(std::move(nic));
  }
}

std::optional<CompositePartition> read_partition(TableReader& partition) {
  CompositePartition result;
  auto label = partition.string("label", true);
  auto path = partition.path("path", true);
  result.writable = partition.boolean("writable").value_or(false);
  if (auto type = partition.choice("type", partition_type_names()))
    result.type = *partition_type_named(*type);
  partition.finish();
  if (!label || !path)
    return std::nullopt;
  result.label = *label;
  result.path = *path;
  return result;
}

std::optional<DiskSpec> read_disk(TableReader& disk) {
  const bool is_composite = disk.raw().contains("partitions");
  if (is_composite && disk.raw().contains("path")) {
    disk.problems().add(
        disk.raw().source(), disk.dotted(""),
        "a disk has either 'path' (a raw image) or 'partitions' (a composite disk), not both");
    return std::nullopt;
  }
  if (!is_composite) {
    RawDisk raw;
    auto path = disk.path("path", true);
    raw.writable = disk.boolean("writable").value_or(false);
    disk.finish();
    if (!path)
      return std::nullopt;
    // A composite description written by `vm composite` is not an image: attached as one, the
    // guest would see a disk of a few hundred bytes of protobuf.
    if (disk::is_composite_file(*path)) {
      auto entry = disk::partitions_entry(*path);
      disk.problems().add(disk.raw().get("path")->source(), disk.dotted("path"),
                          path->string() +
                              " is a composite disk description, not a disk image: name its "
                              "partitions instead" +
                              (entry ? ":\n" + *entry : " (" + entry.error().message + ")"));
      return std::nullopt;
    }
    raw.path = *path;
    return raw;
  }
  CompositeDisk composite;
  bool ok = true;
  const auto partitions = disk.tables("partitions");
  for (const auto& [i, table] : partitions) {
    TableReader reader(*table, disk.dotted("partitions[" + std::to_string(i) + "]"),
                       disk.problems(), disk.base_dir());
    if (auto partition = read_partition(reader)) {
      composite.partitions.push_back(std::move(*partition));
    } else {
      ok = false;
    }
  }
  const toml::array* listed = disk.raw().get("partitions")->as_array();
  if (listed != nullptr && listed->empty()) {
    disk.problems().add(disk.raw().get("partitions")->source(), disk.dotted("partitions"),
                        "a composite disk needs at least one partition");
    ok = false;
  }
  disk.finish();
  if (!ok)
    return std::nullopt;
  return composite;
}

void read_disks(TableReader& vm, VmSpec& spec) {
  for (const auto& [i, table] : vm.tables("disks")) {
    TableReader reader(*table, vm.dotted("disks[" + std::to_string(i) + "]"), vm.problems(),
                       vm.base_dir());
    if (auto disk = read_disk(reader))
      spec.disks.push_back(std::move(*disk));
  }
}

}  // namespace

std::optional<VmSpec> read_vm_table(TableReader& vm, bool best_effort) {
  const std::size_t problems_before = vm.problems().all().size();
  VmSpec spec;
  if (auto name = vm.string("name", true)) {
    if (is_valid_vm_name(*name)) {
      spec.name = *name;
    } else {
      vm.problems().add(vm.raw().get("name")->source(), vm.dotted("name"),
                        std::string("must be ") + kVmNameRule);
    }
  }
  if (auto vmm = vm.choice("vmm", vmm_kind_names()))
    spec.vmm = *vmm_kind_named(*vmm);
  if (auto kernel = vm.path("kernel"))
    spec.kernel = *kernel;
  spec.initrd = vm.path("initrd");
  spec.bootloader = vm.path("bootloader");
  spec.nvram_template = vm.path("nvram_template");
  if (auto params = vm.string("params")) {
    if (auto problem = kernel_params_problem(*params))
      vm.problems().add(vm.raw().get("params")->source(), vm.dotted("params"), *problem);
    else
      spec.params = *params;
  }
  if (auto memory = vm.integer("memory_mib", limits::kMinMemoryMib, limits::kMaxMemoryMib)) {
    spec.memory_mib = static_cast<std::uint32_t>(*memory);
  }
  if (auto cpus = vm.integer("cpus", limits::kMinCpus, limits::kMaxCpus))
    spec.cpus = static_cast<std::uint32_t>(*cpus);
  if (auto overhead = vm.integer("memory_overhead_mib", 0, limits::kMaxMemoryOverheadMib))
    spec.memory_overhead_mib = static_cast<std::uint32_t>(*overhead);
  if (auto quota =
          vm.integer("cpu_quota_percent", limits::kMinCpuQuotaPercent, limits::kMaxCpuQuotaPercent))
    spec.cpu_quota_percent = static_cast<std::uint32_t>(*quota);
  if (auto pids = vm.integer("pids_max", limits::kMinPidsMax, limits::kMaxPidsMax))
    spec.pids_max = static_cast<std::uint32_t>(*pids);
  if (auto debug = vm.choice("debug", debug_level_names()))
    spec.debug = *debug_level_named(*debug);
  if (auto cid = vm.integer("cid", limits::kMinCid, limits::kMaxCid))
    spec.cid = static_cast<std::uint32_t>(*cid);
  read_ready(vm, spec);
  if (auto port = vm.integer("gdb_port", limits::kMinGdbPort, limits::kMaxGdbPort))
    spec.gdb_port = static_cast<std::uint16_t>(*port);
  read_disks(vm, spec);
  read_networks(vm, spec);
  if (auto accel = vm.string("accel"))
    spec.accel = *accel;
  if (auto timeout = vm.seconds("stop_timeout_s", 0, limits::kMaxStopTimeout.count() / 1000.0)) {
    spec.stop_timeout = std::chrono::milliseconds(static_cast<std::int64_t>(*timeout * 1000));
  }
  if (auto timeout = vm.seconds("ready_timeout_s", limits::kMinReadyTimeout.count() / 1000.0,
                                limits::kMaxReadyTimeout.count() / 1000.0)) {
    if (has_ready_condition(spec)) {
      spec.ready_timeout = std::chrono::milliseconds(static_cast<std::int64_t>(*timeout * 1000));
    } else {
      vm.problems().add(vm.raw().get("ready_timeout_s")->source(), vm.dotted("ready_timeout_s"),
                        "needs a ready condition to time, e.g. ready = { console = \"login:\" }");
    }
  }
  if (auto binary = vm.string("vmm_binary")) {
    // A bare name is looked up on PATH; anything with a slash is a path relative to the file.
    spec.vmm_binary = binary->find('/') == std::string::npos ? std::filesystem::path(*binary)
                                                             : vm.resolve(*binary);
  }
  if (auto problem = boot_problem(spec)) {
    const toml::node* at = vm.raw().get(problem->key);
    vm.problems().add(at ? at->source() : vm.raw().source(), vm.dotted(problem->key), problem->why);
  } else if (spec.bootloader && !spec.nvram_template && spec.vmm == VmmKind::qemu) {
    // QEMU keeps UEFI variables in a store of the VM's own, started from OVMF's template.
    if (auto sibling = sibling_nvram_template(*spec.bootloader);
        sibling && std::filesystem::exists(*sibling))
      spec.nvram_template = *sibling;
  }
  if (spec.gdb_port) {
    const auto where = vm.raw().get("gdb_port")->source();
    if (debug_refusal(spec, DebugFeature::gdb)) {
      vm.problems().add(where, vm.dotted("gdb_port"), kNeedsFullDebug);
    } else if (auto refused = vmm_refusal(spec, DebugFeature::gdb)) {
      vm.problems().add(where, vm.dotted("gdb_port"), refused->message);
    }
  }
  vm.finish();
  if (vm.problems().all().size() != problems_before && !best_effort)
    return std::nullopt;
  return spec;
}

Expected<VmSpec> parse_vm_spec(std::string_view text, const std::filesystem::path& source) {
  const std::string source_name = source.string();
  auto parsed = parse_toml(text, source);
  if (!parsed)
    return make_error(ErrorKind::invalid_config, parsed.error());
  const toml::table& root = *parsed;
  // [vm] (one table) is a VM file's keys under a header they do not take; [[vm]] is a fleet's.
  if (const auto* header = root.get("vm");
      header && header->is_table() && !root.contains("fleet") && !root.contains("defaults")) {
    return make_error(ErrorKind::invalid_config,
                      source_name + ":" + std::to_string(header->source().begin.line) +
                          ": [vm]: a VM file's keys stand at its top, under no header (a fleet "
                          "file has [[vm]] tables, for `vm fleet up`)");
  }
  if (looks_like_fleet_file(root)) {
    return make_error(ErrorKind::invalid_config,
                      source_name +
                          " is a fleet file ([[vm]] tables), not a VM file: use `vm "
                          "fleet up " +
                          source_name + "`");
  }
  ProblemList problems(source_name);
  TableReader reader(root, "", problems, source.parent_path());
  auto spec = read_vm_table(reader);
  if (!spec)
    return make_error(ErrorKind::invalid_config, problems.to_string());
  return *spec;
}

bool looks_like_fleet_file(const toml::table& root) {
  return root.contains("vm") || root.contains("fleet") || root.contains("defaults");
}

Expected<VmSpec> load_vm_file(const std::filesystem::path& path) {
  auto text = read_text_file(path);
  if (!text)
    return make_error(ErrorKind::invalid_config, text.error());
  return parse_vm_spec(*text, std::filesystem::absolute(path));
}

}  // namespace crosvisor::config

namespace crosvisor {

Expected<VmSpec> load_vm_file(const std::filesystem::path& path) {
  return config::load_vm_file(path);
}

}  // namespace crosvisor
