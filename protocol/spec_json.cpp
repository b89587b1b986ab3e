#include "protocol/spec_json.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>

#include "disk/image_file.hpp"
#include "process/launch.hpp"

namespace crosvisor::protocol {
namespace {

using json = nlohmann::json;

Error bad(const std::string& where, const std::string& what) {
  return Error{ErrorKind::invalid_config, where + ": " + what};
}

// --- client side ---------------------------------------------------------------------------------

// --- daemon side ---------------------------------------------------------------------------------

class FieldReader {
 public:
  FieldReader(const json& object, std::string where) : object_(object), where_(std::move(where)) {}

  Expected<void> only(std::initializer_list<const char*> allowed) const {
    if (!object_.is_object())
      return std::unexpected(bad(where_, "must be an object"));
    for (const auto& [key, value] : object_.items()) {
      if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; }))
        return std::unexpected(bad(path(key), "unknown field"));
    }
    return {};
  }
  bool has(const char* key) const { return object_.contains(key); }
  std::string path(const std::string& key) const {
    return where_.empty() ? key : where_ + "." + key;
  }
  const json& at(const char* key) const { return object_.at(key); }

  Expected<std::string> string(const char* key) const {
    if (!object_.contains(key))
      return std::unexpected(bad(path(key), "missing"));
    if (!object_[key].is_string())
      return std::unexpected(bad(path(key), "must be a string"));
    return object_[key].get<std::string>();
  }
  Expected<std::int64_t> integer(const char* key, std::int64_t low, std::int64_t high) const {
    const json& value = object_[key];
    if (!value.is_number_integer())
      return std::unexpected(bad(path(key), "must be an integer"));
    const auto number = value.get<std::int64_t>();
    if (number < low || number > high) {
      return std::unexpected(bad(
          path(key), "must be between " + std::to_string(low) + " and " + std::to_string(high)));
    }
    return number;
  }
  Expected<bool> boolean(const char* key) const {
    if (!object_[key].is_boolean())
      return std::unexpected(bad(path(key), "must be true or false"));
    return object_[key].get<bool>();
  }

 private:
  const json& object_;
  std::string where_;
};

}  // namespace

// The received fds, each handed to the specs that name it. In a fleet message a read-only file
// may be named by several VMs (replicas share a kernel); a writable one only ever by one.
class FdTaker {
 public:
  FdTaker(std::vector<UniqueFd> fds, bool shared) : shared_(shared) {
    for (auto& fd : fds)
      slots_.push_back(Slot{std::move(fd), nullptr, 0, false});
  }

  // The fd an {"fd": N} object names, checked to be a file of the kind the use needs, handed
  // over to `spec`; returns the path the spec uses for it.
  Expected<std::filesystem::path> take(const json& reference, const std::string& where,
                                       bool block_device_ok, bool writable, VmSpec& spec) {
    FieldReader reader(reference, where);
    if (auto only = reader.only({"fd", "path"}); !only)
      return std::unexpected(only.error());
    // How the client names the file: for messages and `vm info`, never opened.
    std::string shown;
    if (reader.has("path")) {
      auto path = reader.string("path");
      if (!path)
        return std::unexpected(path.error());
      if (path->size() > 4096)
        return std::unexpected(bad(where + ".path", "longer than 4096 bytes"));
      shown = *path;
    }
    if (!reader.has("fd"))
      return std::unexpected(bad(where + ".fd", "missing"));
    auto index = reader.integer("fd", 0, static_cast<std::int64_t>(kMaxIndex));
    if (!index)
      return std::unexpected(index.error());
    const auto i = static_cast<std::size_t>(*index);
    if (i >= slots_.size()) {
      return std::unexpected(bad(where + ".fd", "index " + std::to_string(i) + ", but only " +
                                                    std::to_string(slots_.size()) +
                                                    " fds came with the message"));
    }
    Slot& slot = slots_[i];
    if (slot.uses > 0 && (!shared_ || writable || slot.writable)) {
      return std::unexpected(bad(where + ".fd", "fd " + std::to_string(i) + " is used twice" +
                                                    (shared_ ? " and written" : "")));
    }
    if (slot.uses == 0) {
      // An O_PATH fd grants no access of its own: a VMM reopening /proc/self/fd/N would get the
      // daemon's rights to the file instead of the client's.
      const int flags = fcntl(slot.fd.get(), F_GETFL);
      if (flags < 0 || (flags & O_PATH) != 0)
        return std::unexpected(
            bad(where + ".fd",
                "fd " + std::to_string(i) + " is an O_PATH fd: open the file for reading"));
      struct stat info {};
      if (fstat(slot.fd.get(), &info) != 0)
        return std::unexpected(errno_error(ErrorKind::io, where + ".fd", errno));
      const bool regular = S_ISREG(info.st_mode);
      const bool block = S_ISBLK(info.st_mode);
      if (!regular && !(block && block_device_ok)) {
        const char* kind = S_ISDIR(info.st_mode)    ? "a directory"
                           : S_ISSOCK(info.st_mode) ? "a socket"
                           : S_ISFIFO(info.st_mode) ? "a pipe"
                           : S_ISCHR(info.st_mode)  ? "a character device"
                                                    : "not a file";
        return std::unexpected(
            bad(where + ".fd", "fd " + std::to_string(i) + " is " + kind +
                                   (block_device_ok ? ", not a regular file or block device"
                                                    : ", not a regular file")));
      }
      VmSpec owner;  // hand_over makes the closing owner; every spec naming it shares it
      owner.hand_over(slot.fd.release());
      slot.owner = owner.handed_fds.front();
    }
    const int mode = fcntl(slot.fd.valid() ? slot.fd.get() : *slot.owner, F_GETFL) & O_ACCMODE;
    if (writable && mode != O_RDWR) {
      return std::unexpected(bad(where + ".fd", "fd " + std::to_string(i) +
                                                    " is not open for reading and writing, and "
                                                    "this disk is writable"));
    }
    if (mode == O_WRONLY)
      return std::unexpected(bad(where + ".fd", "fd " + std::to_string(i) + " cannot be read"));
    ++slot.uses;
    slot.writable = slot.writable || writable;
    spec.handed_fds.push_back(slot.owner);
    const std::string handed = "/proc/self/fd/" + std::to_string(*slot.owner);
    if (!shown.empty())
      spec.shown_paths[handed] = shown;
    return handed;
  }

  Expected<void> all_used() const {
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].uses == 0)
        return std::unexpected(
            bad("vm", "fd " + std::to_string(i) + " came with the message but nothing names it"));
    }
    return {};
  }

 private:
  struct Slot {
    UniqueFd fd;
    std::shared_ptr<const int> owner;
    int uses = 0;
    bool writable = false;
  };
  static constexpr std::size_t kMaxIndex = 1024;
  bool shared_;
  std::vector<Slot> slots_;
};

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
        if (auto only = partition.only({"label", "fd", "path", "writable"}); !only)
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

Expected<json> FdCollector::add(const std::filesystem::path& path, bool writable,
                                const std::string& role, bool disk) {
  if (share_read_only_ && !writable) {
    std::error_code ec;
    const auto key = std::filesystem::weakly_canonical(path, ec).string();
    if (auto it = read_only_.find(key); it != read_only_.end())
      return json{{"fd", it->second}};
    auto added = open_new(path, writable, role, disk);
    if (added)
      read_only_[key] = (*added)["fd"].get<std::size_t>();
    return added;
  }
  return open_new(path, writable, role, disk);
}

Expected<json> FdCollector::open_new(const std::filesystem::path& path, bool writable,
                                     const std::string& role, bool disk) {
  // The checks the launch makes, made here first, where the error can name the user's own path.
  auto image = disk ? disk::open_disk_image(path, writable, role)
                    : disk::open_sized_image(path, writable, role);
  if (!image)  // a VM file naming a file that cannot serve is a wrong VM file
    return std::unexpected(Error{ErrorKind::invalid_config, image.error().message});
  fds.push_back(std::move(image->fd));
  return json{{"fd", fds.size() - 1}, {"path", path.string()}};
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
  auto kernel = files.add(spec.kernel, false, "kernel");
  if (!kernel)
    return std::unexpected(kernel.error());
  vm["kernel"] = *kernel;
  if (spec.initrd) {
    auto initrd = files.add(*spec.initrd, false, "initrd");
    if (!initrd)
      return std::unexpected(initrd.error());
    vm["initrd"] = *initrd;
  }
  if (spec.ready)
    vm["ready"] = {{"console", spec.ready->pattern}};
  if (spec.ready_vsock)
    vm["ready"] = {{"vsock_port", spec.ready_vsock->port}};
  if (spec.cid)
    vm["cid"] = *spec.cid;
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
                            {"writable", partition.writable}});
    }
    disks.push_back({{"partitions", partitions}});
  }
  if (!disks.empty())
    vm["disks"] = disks;
  return vm;
}

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
      return make_error(ErrorKind::invalid_config,
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
  if (auto only =
          reader.only({"name", "vmm", "kernel", "initrd", "params", "memory_mib", "cpus", "debug",
                       "accel", "stop_timeout_ms", "ready", "cid", "disks", "vmm_binary"});
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
  if (!reader.has("kernel"))
    return std::unexpected(bad("vm.kernel", "missing"));
  auto kernel = taker.take(reader.at("kernel"), "vm.kernel", false, false, spec);
  if (!kernel)
    return std::unexpected(kernel.error());
  spec.kernel = *kernel;
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
    auto memory = reader.integer("memory_mib", 16, 1 << 20);
    if (!memory)
      return std::unexpected(memory.error());
    spec.memory_mib = static_cast<std::uint32_t>(*memory);
  }
  if (reader.has("cpus")) {
    auto cpus = reader.integer("cpus", 1, 256);
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
    auto timeout = reader.integer("stop_timeout_ms", 0, 3'600'000);
    if (!timeout)
      return std::unexpected(timeout.error());
    spec.stop_timeout = std::chrono::milliseconds(*timeout);
  }
  if (reader.has("cid")) {
    auto cid = reader.integer("cid", 3, 0xfffffffe);
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
      auto port = ready.integer("vsock_port", 1, 0xfffffffe);
      if (!port)
        return std::unexpected(port.error());
      spec.ready_vsock = VsockReady{static_cast<std::uint32_t>(*port)};
    }
  }
  if (reader.has("disks")) {
    if (auto disks = read_disks(reader.at("disks"), taker, spec); !disks)
      return std::unexpected(disks.error());
  }
  return spec;
}

}  // namespace crosvisor::protocol
