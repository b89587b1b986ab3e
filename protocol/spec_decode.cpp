// The daemon's side of spec_json.hpp: a VM description read strictly, its files taken from the
// fds that came with the message (received_fds.hpp).
#include "core/debug_policy.hpp"
#include "protocol/field_reader.hpp"
#include "protocol/received_fds.hpp"
#include "protocol/spec_json.hpp"

namespace crosvisor::protocol {

using json = nlohmann::json;

namespace {

// The {"fd", "path"} part of a disk or partition entry.
json file_reference(const json& entry) {
  json reference = {{"fd", entry.at("fd")}};
  if (entry.contains("path"))
    reference["path"] = entry.at("path");
  return reference;
}

Expected<void> read_disks(const json& disks, FdTaker& taker, VmSpec& spec) {
  if (!disks.is_array())
    return std::unexpected(bad("vm.disks", "must be an array"));
  for (std::size_t d = 0; d < disks.size(); ++d) {
    const std::string where = "vm.disks[" + std::to_string(d) + "]";
    FieldReader disk(disks[d], where);
    if (auto only = disk.only({"fd", "path", "writable", "partitions"}); !only)
      return only;
    const bool writable_given = disk.has("writable");
    if (disk.has("partitions")) {
      if (disk.has("fd") || writable_given)
        return std::unexpected(bad(where, "a disk has either 'fd' or 'partitions', not both"));
      const json& partitions = disk.at("partitions");
      if (!partitions.is_array() || partitions.empty())
        return std::unexpected(bad(where + ".partitions", "must be a non-empty array"));
      CompositeDisk composite;
      for (std::size_t p = 0; p < partitions.size(); ++p) {
        const std::string at = where + ".partitions[" + std::to_string(p) + "]";
        FieldReader partition(partitions[p], at);
        if (auto only = partition.only({"label", "fd", "path", "writable", "type"}); !only)
          return only;
        CompositePartition part;
        auto label = partition.string("label");
        if (!label)
          return std::unexpected(label.error());
        part.label = *label;
        if (partition.has("writable")) {
          auto writable = partition.boolean("writable");
          if (!writable)
            return std::unexpected(writable.error());
          part.writable = *writable;
        }
        if (partition.has("type")) {
          auto type = partition.string("type");
          if (!type)
            return std::unexpected(type.error());
          const auto named = partition_type_named(*type);
          if (!named)
            return std::unexpected(bad(at + ".type", "must be \"linux\" or \"esp\""));
          part.type = *named;
        }
        if (!partition.has("fd"))
          return std::unexpected(bad(at + ".fd", "missing"));
        auto path = taker.take(file_reference(partitions[p]), at, true, part.writable, spec);
        if (!path)
          return std::unexpected(path.error());
        part.path = *path;
        composite.partitions.push_back(std::move(part));
      }
      spec.disks.push_back(std::move(composite));
      continue;
    }
    if (!disk.has("fd"))
      return std::unexpected(bad(where, "needs 'fd' (a raw image) or 'partitions'"));
    RawDisk raw;
    if (writable_given) {
      auto writable = disk.boolean("writable");
      if (!writable)
        return std::unexpected(writable.error());
      raw.writable = *writable;
    }
    auto path = taker.take(file_reference(disks[d]), where, true, raw.writable, spec);
    if (!path)
      return std::unexpected(path.error());
    raw.path = *path;
    spec.disks.push_back(std::move(raw));
  }
  return {};
}

}  // namespace

Expected<VmSpec> read_spec(const json& vm, FdTaker& taker);

Expected<VmSpec> spec_from_message(const json& vm, std::vector<UniqueFd> fds) {
  FdTaker taker(std::move(fds), /*shared=*/false);  // every fd is closed on any error path
  auto spec = read_spec(vm, taker);
  if (!spec)
    return spec;
  if (auto all = taker.all_used(); !all)
    return std::unexpected(all.error());
  return spec;
}

Expected<std::vector<VmSpec>> specs_from_message(const std::vector<const json*>& vms,
                                                 std::vector<UniqueFd> fds) {
  FdTaker taker(std::move(fds), /*shared=*/true);
  std::vector<VmSpec> specs;
  for (std::size_t i = 0; i < vms.size(); ++i) {
    auto spec = read_spec(*vms[i], taker);
    if (!spec) {
      return make_error(spec.error().kind,
                        "vms[" + std::to_string(i) + "]." + spec.error().message);
    }
    specs.push_back(std::move(*spec));
  }
  if (auto all = taker.all_used(); !all)
    return std::unexpected(all.error());
  return specs;
}

Expected<VmSpec> read_spec(const json& vm, FdTaker& taker) {
  FieldReader reader(vm, "vm");
  if (auto only = reader.only({"name",
                               "vmm",
                               "kernel",
                               "initrd",
                               "params",
                               "bootloader",
                               "nvram_template",
                               "memory_mib",
                               "cpus",
                               "debug",
                               "accel",
                               "stop_timeout_ms",
                               "ready",
                               "ready_timeout_ms",
                               "cid",
                               "gdb_port",
                               "networks",
                               "disks",
                               "vmm_binary",
                               "memory_overhead_mib",
                               "cpu_quota_percent",
                               "pids_max"});
      !only)
    return std::unexpected(only.error());
  VmSpec spec;
  auto name = reader.string("name");
  if (!name)
    return std::unexpected(name.error());
  if (!is_valid_vm_name(*name)) {
    return std::unexpected(bad("vm.name", "'" + *name + "' is not a VM name: " + kVmNameRule));
  }
  spec.name = *name;
  if (reader.has("vmm")) {
    auto vmm = reader.string("vmm");
    if (!vmm)
      return std::unexpected(vmm.error());
    const auto kind = vmm_kind_named(*vmm);
    if (!kind)
      return std::unexpected(bad("vm.vmm", "must be \"qemu\" or \"crosvm\""));
    spec.vmm = *kind;
  }
  if (reader.has("vmm_binary")) {
    // Whether this client may name one is the session's to decide (daemon/vm_requests.cpp).
    auto binary = reader.string("vmm_binary");
    if (!binary)
      return std::unexpected(binary.error());
    if (binary->empty() || binary->front() != '/')
      return std::unexpected(bad("vm.vmm_binary", "must be an absolute path"));
    spec.vmm_binary = *binary;
  }
  if (reader.has("kernel")) {
    auto kernel = taker.take(reader.at("kernel"), "vm.kernel", false, false, spec);
    if (!kernel)
      return std::unexpected(kernel.error());
    spec.kernel = *kernel;
  }
  if (reader.has("bootloader")) {
    auto bootloader = taker.take(reader.at("bootloader"), "vm.bootloader", false, false, spec);
    if (!bootloader)
      return std::unexpected(bootloader.error());
    spec.bootloader = *bootloader;
  }
  if (reader.has("nvram_template")) {
    auto vars = taker.take(reader.at("nvram_template"), "vm.nvram_template", false, false, spec);
    if (!vars)
      return std::unexpected(vars.error());
    spec.nvram_template = *vars;
  }
  if (reader.has("initrd")) {
    auto initrd = taker.take(reader.at("initrd"), "vm.initrd", false, false, spec);
    if (!initrd)
      return std::unexpected(initrd.error());
    spec.initrd = *initrd;
  }
  if (reader.has("params")) {
    auto params = reader.string("params");
    if (!params)
      return std::unexpected(params.error());
    if (auto problem = kernel_params_problem(*params))
      return std::unexpected(bad("vm.params", *problem));
    spec.params = *params;
  }
  if (reader.has("memory_mib")) {
    auto memory = reader.integer("memory_mib", limits::kMinMemoryMib, limits::kMaxMemoryMib);
    if (!memory)
      return std::unexpected(memory.error());
    spec.memory_mib = static_cast<std::uint32_t>(*memory);
  }
  if (reader.has("cpus")) {
    auto cpus = reader.integer("cpus", limits::kMinCpus, limits::kMaxCpus);
    if (!cpus)
      return std::unexpected(cpus.error());
    spec.cpus = static_cast<std::uint32_t>(*cpus);
  }
  if (reader.has("debug")) {
    auto debug = reader.string("debug");
    if (!debug)
      return std::unexpected(debug.error());
    const auto level = debug_level_named(*debug);
    if (!level)
      return std::unexpected(bad("vm.debug", "must be \"full\" or \"none\""));
    spec.debug = *level;
  }
  if (reader.has("accel")) {
    auto accel = reader.string("accel");
    if (!accel)
      return std::unexpected(accel.error());
    spec.accel = *accel;
  }
  if (reader.has("stop_timeout_ms")) {
    auto timeout = reader.integer("stop_timeout_ms", 0, limits::kMaxStopTimeout.count());
    if (!timeout)
      return std::unexpected(timeout.error());
    spec.stop_timeout = std::chrono::milliseconds(*timeout);
  }
  const auto limit = [&](const char* key, std::uint32_t low, std::uint32_t high,
                         std::optional<std::uint32_t>& into) -> Expected<void> {
    if (!reader.has(key))
      return {};
    auto value = reader.integer(key, low, high);
    if (!value)
      return std::unexpected(value.error());
    into = static_cast<std::uint32_t>(*value);
    return {};
  };
  for (auto read :
       {limit("memory_overhead_mib", 0, limits::kMaxMemoryOverheadMib, spec.memory_overhead_mib),
        limit("cpu_quota_percent", limits::kMinCpuQuotaPercent, limits::kMaxCpuQuotaPercent,
              spec.cpu_quota_percent),
        limit("pids_max", limits::kMinPidsMax, limits::kMaxPidsMax, spec.pids_max)}) {
    if (!read)
      return std::unexpected(read.error());
  }
  if (reader.has("gdb_port")) {
    auto port = reader.integer("gdb_port", limits::kMinGdbPort, limits::kMaxGdbPort);
    if (!port)
      return std::unexpected(port.error());
    spec.gdb_port = static_cast<std::uint16_t>(*port);
  }
  if (reader.has("cid")) {
    auto cid = reader.integer("cid", limits::kMinCid, limits::kMaxCid);
    if (!cid)
      return std::unexpected(cid.error());
    spec.cid = static_cast<std::uint32_t>(*cid);
  }
  if (reader.has("ready")) {
    FieldReader ready(reader.at("ready"), "vm.ready");
    if (auto only = ready.only({"console", "vsock_port"}); !only)
      return std::unexpected(only.error());
    if (ready.has("console") == ready.has("vsock_port"))
      return std::unexpected(bad("vm.ready", "give either 'console' or 'vsock_port'"));
    if (ready.has("console")) {
      auto pattern = ready.string("console");
      if (!pattern)
        return std::unexpected(pattern.error());
      if (pattern->empty())
        return std::unexpected(bad("vm.ready.console", "must not be empty"));
      spec.ready = ConsoleReady{*pattern};
    } else {
      auto port = ready.integer("vsock_port", limits::kMinVsockPort, limits::kMaxVsockPort);
      if (!port)
        return std::unexpected(port.error());
      spec.ready = VsockReady{static_cast<std::uint32_t>(*port)};
    }
  }
  if (reader.has("ready_timeout_ms")) {
    auto timeout = reader.integer("ready_timeout_ms", limits::kMinReadyTimeout.count(),
                                  limits::kMaxReadyTimeout.count());
    if (!timeout)
      return std::unexpected(timeout.error());
    if (!has_ready_condition(spec))
      return std::unexpected(bad("vm.ready_timeout_ms", "needs a ready condition"));
    spec.ready_timeout = std::chrono::milliseconds(*timeout);
  }
  if (reader.has("networks")) {
    const json& listed = reader.at("networks");
    if (!listed.is_array() || listed.size() > kMaxNics)
      return std::unexpected(bad(
          "vm.networks", "must be an array of at most " + std::to_string(kMaxNics) + " networks"));
    for (std::size_t i = 0; i < listed.size(); ++i) {
      const std::string at = "vm.networks[" + std::to_string(i) + "]";
      FieldReader entry(listed[i], at);
      if (auto only = entry.only({"name", "address", "mac"}); !only)
        return std::unexpected(only.error());
      NicSpec nic;
      auto network = entry.string("name");
      if (!network)
        return std::unexpected(network.error());
      if (!is_valid_vm_name(*network))
        return std::unexpected(bad(at + ".name", "must be a network name"));
      nic.network = *network;
      if (entry.has("address")) {
        auto text = entry.string("address");
        if (!text || !(nic.address = parse_ipv4(*text)))
          return std::unexpected(bad(at + ".address", "must be an IPv4 address"));
      }
      if (entry.has("mac")) {
        auto text = entry.string("mac");
        if (!text || !(nic.mac = parse_mac(*text)) || !nic.mac->unicast())
          return std::unexpected(bad(at + ".mac", "must be a unicast MAC address"));
      }
      for (const auto& other : spec.nics) {
        if (other.network == nic.network)
          return std::unexpected(bad(at + ".name", "joins " + nic.network + " twice"));
      }
      spec.nics.push_back(std::move(nic));
    }
  }
  if (auto problem = boot_problem(spec))
    return std::unexpected(bad(std::string("vm.") + problem->key, problem->why));
  if (spec.gdb_port) {
    // After the debug level and the VMM, wherever the fields came in the object.
    if (auto refused = debug_refusal(spec, DebugFeature::gdb))
      return std::unexpected(bad("vm.gdb_port", refused->message));
    if (auto refused = vmm_refusal(spec, DebugFeature::gdb))
      return std::unexpected(bad("vm.gdb_port", refused->message));
  }
  if (reader.has("disks")) {
    if (auto disks = read_disks(reader.at("disks"), taker, spec); !disks)
      return std::unexpected(disks.error());
  }
  return spec;
}

}  // namespace crosvisor::protocol
