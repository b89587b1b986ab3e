#include "lifecycle/image_claims.hpp"

#include <sys/stat.h>

#include "core/handed_files.hpp"

namespace crosvisor::lifecycle {
namespace {

std::optional<ImageId> id_of(const std::filesystem::path& path) {
  struct stat info {};
  const auto handed = handed_fd_number(path);
  const int result = handed ? ::fstat(*handed, &info) : ::stat(path.c_str(), &info);
  if (result != 0)
    return std::nullopt;
  return ImageId{info.st_dev, info.st_ino};
}

}  // namespace

std::vector<ImageUse> images_of(const VmSpec& spec) {
  std::vector<ImageUse> images;
  const auto add = [&](const std::filesystem::path& path, bool writable, std::string role) {
    if (auto id = id_of(path))
      images.push_back({*id, writable, role + " " + spec.shown(path)});
  };
  for (std::size_t d = 0; d < spec.disks.size(); ++d) {
    const std::string disk = "disk " + std::to_string(d);
    if (const auto* raw = std::get_if<RawDisk>(&spec.disks[d])) {
      add(raw->path, raw->writable, disk);
      continue;
    }
    for (const auto& partition : std::get<CompositeDisk>(spec.disks[d]).partitions)
      add(partition.path, partition.writable, disk + " partition \"" + partition.label + "\"");
  }
  return images;
}

std::optional<Error> ImageClaims::claim(Holder holder, std::optional<std::uint32_t> owner,
                                        const std::string& name,
                                        const std::vector<ImageUse>& images) {
  for (std::size_t i = 0; i < images.size(); ++i) {
    const ImageUse& use = images[i];
    for (std::size_t j = 0; j < i; ++j) {
      if (images[j].id == use.id && (use.writable || images[j].writable))
        return Error{ErrorKind::invalid_config, use.role + " is the same image as " +
                                                    images[j].role +
                                                    ": a VM must not use an image it writes twice"};
    }
    auto users = users_.find(use.id);
    if (users == users_.end())
      continue;
    for (const auto& [other, claim] : users->second) {
      if (other == holder || (!use.writable && !claim.writable))
        continue;
      const std::string who =
          claim.owner == owner ? "VM " + claim.name : std::string("another running VM");
      return Error{ErrorKind::conflict,
                   use.role +
                       (claim.writable ? " is already written by " : " is already read by ") + who +
                       ": an image one VM writes must not be used by another"};
    }
  }
  for (const ImageUse& use : images) {
    auto [it, added] = users_[use.id].try_emplace(holder, Claim{owner, name, false});
    it->second.writable = it->second.writable || use.writable;
    if (added)
      by_holder_[holder].push_back(use.id);
  }
  return std::nullopt;
}

void ImageClaims::release(Holder holder) {
  auto held = by_holder_.find(holder);
  if (held == by_holder_.end())
    return;
  for (const ImageId& id : held->second) {
    auto users = users_.find(id);
    users->second.erase(holder);
    if (users->second.empty())
      users_.erase(users);
  }
  by_holder_.erase(held);
}

}  // namespace crosvisor::lifecycle
