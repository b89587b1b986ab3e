// The client's side of spec_json.hpp: a VM's files opened with the user's rights and checked as
// the launch will check them, and the JSON that names them by fd index.
#include "disk/image_file.hpp"
#include "process/launch.hpp"
#include "protocol/spec_json.hpp"

namespace crosvisor::protocol {

using json = nlohmann::json;

Expected<json> FdCollector::add(const std::filesystem::path& path, bool writable,
                                const std::string& role, bool disk) {
  if (share_read_only_ && !writable) {
    std::error_code ec;
    const auto key = std::filesystem::weakly_canonical(path, ec).string();
    // The same reference again, path included: every VM sharing the file shows it (vm info),
    // by the one name a restored fleet reopens it by.
    if (auto it = read_only_.find(key); it != read_only_.end())
      return it->second;
    auto added = open_new(path, writable, role, disk);
    if (added)
      read_only_[key] = *added;
    return added;
  }
  return open_new(path, writable, role, disk);
}

Expected<json> FdCollector::open_new(const std::filesystem::path& path, bool writable,
                                     const std::string& role, bool disk) {
  // The checks the launch makes, made here first, where the error can name the user's own path.
  auto image = disk ? disk::open_disk_image(path, writable, role)
                    : disk::open_sized_image(path, writable, role);
  if (!image)  // missing (not_found), or unusable as it is (invalid_image)
    return std::unexpected(image.error());
  fds.push_back(std::move(image->fd));
  // Absolute: a daemon that reopens the file after a restart (a persistent fleet) has no
  // working directory of the client's to resolve it from.
  return json{{"fd", fds.size() - 1}, {"path", std::filesystem::absolute(path).string()}};
}

Expected<SpecMessage> spec_to_message(const VmSpec& spec) {
  FdCollector files(false);
  auto vm = spec_json(spec, files);
  if (!vm)
    return std::unexpected(vm.error());
  return SpecMessage{std::move(*vm), std::move(files.fds)};
}

Expected<json> spec_json(const VmSpec& spec, FdCollector& files) {
  json vm = {{"name", spec.name},     {"vmm", std::string(to_string(spec.vmm))},
             {"params", spec.params}, {"memory_mib", spec.memory_mib},
             {"cpus", spec.cpus},     {"debug", std::string(to_string(spec.debug))},
             {"accel", spec.accel},   {"stop_timeout_ms", spec.stop_timeout.count()}};
  if (!spec.vmm_binary.empty()) {
    // Looked up here, on the user's PATH: the daemon runs exactly this file.
    auto binary = process::resolve_binary(spec.vmm_binary);
    if (!binary)
      return std::unexpected(
          Error{ErrorKind::invalid_config, "vmm_binary " + binary.error().message});
    vm["vmm_binary"] = binary->string();
  }
  if (!spec.kernel.empty()) {
    auto kernel = files.add(spec.kernel, false, "kernel");
    if (!kernel)
      return std::unexpected(kernel.error());
    vm["kernel"] = *kernel;
  }
  if (spec.bootloader) {
    auto bootloader = files.add(*spec.bootloader, false, "bootloader");
    if (!bootloader)
      return std::unexpected(bootloader.error());
    vm["bootloader"] = *bootloader;
  }
  if (spec.nvram_template) {
    auto vars = files.add(*spec.nvram_template, false, "nvram_template");
    if (!vars)
      return std::unexpected(vars.error());
    vm["nvram_template"] = *vars;
  }
  if (spec.initrd) {
    auto initrd = files.add(*spec.initrd, false, "initrd");
    if (!initrd)
      return std::unexpected(initrd.error());
    vm["initrd"] = *initrd;
  }
  if (const auto* console = std::get_if<ConsoleReady>(&spec.ready))
    vm["ready"] = {{"console", console->pattern}};
  if (const auto* vsock = std::get_if<VsockReady>(&spec.ready))
    vm["ready"] = {{"vsock_port", vsock->port}};
  if (spec.ready_timeout)
    vm["ready_timeout_ms"] = spec.ready_timeout->count();
  if (spec.cid)
    vm["cid"] = *spec.cid;
  if (spec.gdb_port)
    vm["gdb_port"] = *spec.gdb_port;
  if (spec.memory_overhead_mib)
    vm["memory_overhead_mib"] = *spec.memory_overhead_mib;
  if (spec.cpu_quota_percent)
    vm["cpu_quota_percent"] = *spec.cpu_quota_percent;
  if (spec.pids_max)
    vm["pids_max"] = *spec.pids_max;
  if (!spec.nics.empty()) {
    json nics = json::array();
    for (const auto& nic : spec.nics) {
      json entry = {{"name", nic.network}};
      if (nic.address)
        entry["address"] = to_string(*nic.address);
      if (nic.mac)
        entry["mac"] = to_string(*nic.mac);
      nics.push_back(std::move(entry));
    }
    vm["networks"] = std::move(nics);
  }
  json disks = json::array();
  for (std::size_t d = 0; d < spec.disks.size(); ++d) {
    const std::string role = "disk " + std::to_string(d);
    if (const auto* raw = std::get_if<RawDisk>(&spec.disks[d])) {
      auto fd = files.add(raw->path, raw->writable, role, /*disk=*/true);
      if (!fd)
        return std::unexpected(fd.error());
      disks.push_back({{"fd", (*fd)["fd"]}, {"path", (*fd)["path"]}, {"writable", raw->writable}});
      continue;
    }
    json partitions = json::array();
    for (const auto& partition : std::get<CompositeDisk>(spec.disks[d]).partitions) {
      auto fd = files.add(partition.path, partition.writable,
                          role + " partition \"" + partition.label + "\"", /*disk=*/true);
      if (!fd)
        return std::unexpected(fd.error());
      partitions.push_back({{"label", partition.label},
                            {"fd", (*fd)["fd"]},
                            {"path", (*fd)["path"]},
                            {"writable", partition.writable},
                            {"type", std::string(to_string(partition.type))}});
    }
    disks.push_back({{"partitions", partitions}});
  }
  if (!disks.empty())
    vm["disks"] = disks;
  return vm;
}

}  // namespace crosvisor::protocol
