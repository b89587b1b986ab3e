// Which VM writes, and which reads, which image. Two VMs writing one image corrupt it, and a VM
// reading an image another writes sees it torn; a fleet file is checked for the first when it is
// read, and this catches both across files, clients and users: an image is known by its device
// and inode, whatever path or fd named it, and a VM is refused before it starts when it would
// write an image another live VM uses, or use one another writes. Readers share. This is the rule
// crosvm's flock (exclusive for writable disks, shared for read-only ones) and QEMU's image locks
// enforce too, but only once the second VMM has started, and in their words.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "crosvisor/error.hpp"
#include "crosvisor/vm_spec.hpp"

namespace crosvisor::lifecycle {

struct ImageId {
  dev_t device = 0;
  ino_t inode = 0;
  friend auto operator<=>(const ImageId&, const ImageId&) = default;
};

struct ImageUse {
  ImageId id;
  bool writable = false;
  std::string role;  // how the client named it: disk 0 /srv/root.img
};

// The disks and partitions of `spec`; a file that cannot be looked at is left out (the launch
// reports it).
std::vector<ImageUse> images_of(const VmSpec& spec);

class ImageClaims {
 public:
  using Holder = std::uint64_t;  // whoever claims: the service uses a VM's actor id

  // Claims every image for `holder` (a VM of `owner` named `name`), or refuses naming the first
  // one in conflict (and the other VM, when it is the same owner's) and claims nothing.
  std::optional<Error> claim(Holder holder, std::optional<std::uint32_t> owner,
                             const std::string& name, const std::vector<ImageUse>& images);
  void release(Holder holder);

 private:
  struct Claim {
    std::optional<std::uint32_t> owner;
    std::string name;
    bool writable = false;
  };
  std::map<ImageId, std::map<Holder, Claim>> users_;  // per image, every holder using it
  std::map<Holder, std::vector<ImageId>> by_holder_;
};

}  // namespace crosvisor::lifecycle
