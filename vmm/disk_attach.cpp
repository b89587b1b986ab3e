#include "vmm/disk_attach.hpp"

#include <fcntl.h>

#include <algorithm>

#include "core/handed_files.hpp"
#include "disk/composite.hpp"
#include "disk/image_file.hpp"
#include "disk/qcow2.hpp"
#include "disk/vmdk.hpp"

namespace crosvisor::vmm {
namespace {

// Writes a file into the run directory and plans an fd for it.
Expected<int> plan_new_file(const std::filesystem::path& path, std::string_view bytes,
                            bool writable, process::FdPlan& fds) {
  if (auto written = disk::write_file_atomically(path, bytes); !written) {
    return std::unexpected(written.error());
  }
  auto fd = disk::open_image(path, writable, "generated file");
  if (!fd)
    return std::unexpected(fd.error());
  return fds.add(std::move(*fd));
}

std::vector<std::string> virtio_blk(std::size_t index, const std::string& drive_options,
                                    QemuBus bus) {
  const std::string id = "disk" + std::to_string(index);
  const char* device = bus == QemuBus::pci ? "virtio-blk-pci" : "virtio-blk-device";
  return {"-drive", "id=" + id + ",if=none," + drive_options, "-device",
          std::string(device) + ",drive=" + id};
}

Expected<std::vector<std::string>> raw_disk_args(const RawDisk& disk, std::size_t index,
                                                 QemuBus bus, process::FdPlan& fds) {
  auto image = disk::open_disk_image(disk.path, disk.writable, "disk " + std::to_string(index));
  if (!image)
    return std::unexpected(image.error());
  const int number = fds.add(std::move(image->fd));
  return virtio_blk(index,
                    "format=raw,file=" + process::FdPlan::proc_path(number) +
                        (disk.writable ? "" : ",readonly=on"),
                    bus);
}

// The parts every composite disk has, whichever VMM reads it: the partitions' fds, and the GPT
// header, footer and filler written into the run directory.
struct CompositeParts {
  disk::CompositeLayout layout;
  std::vector<disk::PartitionInput> inputs;
  std::vector<int> partition_fds;
  int header = -1;
  int footer = -1;
  int filler = -1;
  bool writable = false;  // some partition is
  bool lockable = true;   // every partition is (crosvm's lock option covers every component)

  // The fd number a component reads from.
  int fd_of(const disk::Component& component) const {
    switch (component.kind) {
      case disk::ComponentKind::header:
        return header;
      case disk::ComponentKind::footer:
        return footer;
      case disk::ComponentKind::filler:
        return filler;
      case disk::ComponentKind::partition:
        break;
    }
    return partition_fds[component.partition];
  }
};

std::string as_text(const disk::Bytes& bytes) {
  return std::string(bytes.begin(), bytes.end());
}

// crosvm flocks every image it is given (exclusive when writable, shared when not) on the open
// file description it inherits, and the lock lasts as long as any holder of that description.
// A handed fd's description is also the one the VM's definition keeps for its next start, so a
// lock taken on it would outlive the VMM and refuse the VM's own restart. Each launch therefore
// opens the handed file afresh through /proc/self/fd/N, with the access the handed fd grants and
// never more, and the lock ends with the VMM. When the supervisor may not open the file itself
// (its user lacks the rights: a handed fd is all it has), the handed description goes to the VMM
// with `lockable` false, and the VMM is told not to lock it.
struct LaunchImage {
  disk::OpenedImage image;
  bool lockable = true;
};

Expected<LaunchImage> open_launch_image(const std::filesystem::path& path, bool writable,
                                        const std::string& role) {
  auto image = disk::open_disk_image(path, writable, role);
  if (!image)
    return std::unexpected(image.error());
  if (!handed_fd_number(path))
    return LaunchImage{std::move(*image)};  // opened here for this launch only
  UniqueFd own(::open(("/proc/self/fd/" + std::to_string(image->fd.get())).c_str(),
                      (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOCTTY));
  if (!own)
    return LaunchImage{std::move(*image), false};
  return LaunchImage{{std::move(own), image->size}};
}

Expected<CompositeParts> plan_composite_parts(const CompositeDisk& disk, const std::string& prefix,
                                              const std::filesystem::path& run_dir,
                                              process::FdPlan& fds) {
  CompositeParts parts;
  for (const auto& partition : disk.partitions) {
    auto opened = open_launch_image(partition.path, partition.writable,
                                    "partition \"" + partition.label + "\"");
    if (!opened)
      return std::unexpected(opened.error());
    parts.lockable = parts.lockable && opened->lockable;
    parts.inputs.push_back({partition.label, opened->image.size, partition.writable, std::nullopt,
                            disk::type_guid(partition.type)});
    parts.partition_fds.push_back(fds.add(std::move(opened->image.fd)));
    parts.writable = parts.writable || partition.writable;
  }
  auto layout = disk::plan_composite(parts.inputs, disk::Guid::random());
  if (!layout)
    return std::unexpected(layout.error());
  parts.layout = std::move(*layout);

  auto header =
      plan_new_file(run_dir / (prefix + ".header"), as_text(parts.layout.gpt.header), false, fds);
  if (!header)
    return std::unexpected(header.error());
  auto footer =
      plan_new_file(run_dir / (prefix + ".footer"), as_text(parts.layout.gpt.footer), false, fds);
  if (!footer)
    return std::unexpected(footer.error());
  parts.header = *header;
  parts.footer = *footer;
  // The zero filler only when a read-only partition's size is not aligned: the VMM inherits
  // exactly the fds its disk descriptions name, and an unnamed one would be a leak.
  const bool needs_filler =
      std::any_of(parts.layout.components.begin(), parts.layout.components.end(),
                  [](const disk::Component& c) { return c.kind == disk::ComponentKind::filler; });
  if (needs_filler) {
    auto filler = plan_new_file(run_dir / (prefix + ".filler"),
                                std::string(disk::kZeroFillerSize, '\0'), false, fds);
    if (!filler)
      return std::unexpected(filler.error());
    parts.filler = *filler;
  }
  return parts;
}

Expected<std::vector<std::string>> composite_disk_args(const CompositeDisk& disk, std::size_t index,
                                                       const std::filesystem::path& run_dir,
                                                       QemuBus bus, process::FdPlan& fds) {
  const std::string prefix = "disk" + std::to_string(index);
  auto parts = plan_composite_parts(disk, prefix, run_dir, fds);
  if (!parts)
    return std::unexpected(parts.error());
  const auto& inputs = parts->inputs;

  // Read-only partitions: an empty qcow2 layer per partition, backed by the read-only fd.
  std::vector<int> overlay_fds(inputs.size(), -1);
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].writable)
      continue;
    const auto image = disk::empty_qcow2(disk::align_up(inputs[i].size, disk::kSectorSize));
    auto overlay = plan_new_file(run_dir / (prefix + "-p" + std::to_string(i + 1) + ".qcow2"),
                                 as_text(image), true, fds);
    if (!overlay)
      return std::unexpected(overlay.error());
    overlay_fds[i] = *overlay;
  }

  std::string extent_options;
  int extent = 0;  // encode_vmdk names the components of its extent lines in order
  const std::string vmdk = disk::encode_vmdk(parts->layout, [&](const disk::Component& component) {
    int number = parts->fd_of(component);
    if (component.kind == disk::ComponentKind::partition && overlay_fds[component.partition] >= 0) {
      const std::string node = ",extents." + std::to_string(extent) + ".";
      extent_options += node + "driver=qcow2" + node + "backing.driver=raw" + node +
                        "backing.file.filename=" + process::FdPlan::proc_path(number);
      number = overlay_fds[component.partition];
    }
    ++extent;
    return process::FdPlan::proc_path(number);
  });
  auto descriptor = plan_new_file(run_dir / (prefix + ".vmdk"), vmdk, false, fds);
  if (!descriptor)
    return std::unexpected(descriptor.error());
  return virtio_blk(
      index, "format=vmdk,file=" + process::FdPlan::proc_path(*descriptor) + extent_options, bus);
}

}  // namespace

Expected<std::vector<std::string>> crosvm_disk_args(const DiskSpec& disk, std::size_t index,
                                                    const std::filesystem::path& run_dir,
                                                    process::FdPlan& fds) {
  // crosvm's own default is lock=true; the key is written only when it must be false.
  const auto options = [](bool writable, bool lockable) {
    return std::string(writable ? "" : ",ro=true") + (lockable ? "" : ",lock=false");
  };
  if (const auto* raw = std::get_if<RawDisk>(&disk)) {
    auto opened = open_launch_image(raw->path, raw->writable, "disk " + std::to_string(index));
    if (!opened)
      return std::unexpected(opened.error());
    const int number = fds.add(std::move(opened->image.fd));
    return std::vector<std::string>{
        "--block", process::FdPlan::proc_path(number) + options(raw->writable, opened->lockable)};
  }
  const std::string prefix = "disk" + std::to_string(index);
  auto parts = plan_composite_parts(std::get<CompositeDisk>(disk), prefix, run_dir, fds);
  if (!parts)
    return std::unexpected(parts.error());
  // crosvm reads the composite file itself and takes each /proc/self/fd/N component as the fd it
  // inherited, with that fd's access mode.
  const std::string description =
      disk::encode_composite(parts->layout, [&](const disk::Component& component) {
        return process::FdPlan::proc_path(parts->fd_of(component));
      });
  auto file = plan_new_file(run_dir / (prefix + ".composite"), description, parts->writable, fds);
  if (!file)
    return std::unexpected(file.error());
  return std::vector<std::string>{
      "--block", process::FdPlan::proc_path(*file) + options(parts->writable, parts->lockable)};
}

Expected<std::vector<std::string>> qemu_disk_args(const DiskSpec& disk, std::size_t index,
                                                  const std::filesystem::path& run_dir, QemuBus bus,
                                                  process::FdPlan& fds) {
  if (const auto* raw = std::get_if<RawDisk>(&disk))
    return raw_disk_args(*raw, index, bus, fds);
  return composite_disk_args(std::get<CompositeDisk>(disk), index, run_dir, bus, fds);
}

}  // namespace crosvisor::vmm
