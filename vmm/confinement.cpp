#include "vmm/confinement.hpp"

#include <unistd.h>

#include <vector>

#include "process/accounts.hpp"

namespace crosvisor::vmm {

Expected<process::Sandbox> confinement_for(const VmSpec& spec, const Confinement& confinement) {
  std::optional<process::Account> account;
  if (spec.owner_uid && *spec.owner_uid != 0) {
    account = process::account_of(*spec.owner_uid);
    // A uid without a name (a container's, an LDAP outage) still runs as itself, groupless.
    if (!account)
      account = process::Account{*spec.owner_uid, *spec.owner_uid, {}};
  } else {
    const std::string& user = confinement.vmm_user;
    account = process::account_named(user);
    if (!account)
      return make_error(ErrorKind::invalid_config,
                        "VMM user '" + user +
                            "' is not in the user database: VMMs of VMs without an owner run as "
                            "this user (crosvisord --vmm-user)");
    if (account->uid == 0)
      return make_error(ErrorKind::invalid_config,
                        "VMM user '" + user + "' is root: VMMs never run as root");
  }
  process::Sandbox sandbox;
  sandbox.uid = account->uid;
  sandbox.gid = account->gid;
  sandbox.groups = std::move(account->groups);
  sandbox.mount_point = confinement.mount_point;
  sandbox.read_only = process::default_read_only();
  sandbox.devices = process::default_devices();
  // Its TAPs come as fds and vsock is not namespaced: only a gdb stub, on the host's loopback,
  // needs the host's network.
  sandbox.own_network = !spec.gdb_port;
  return sandbox;
}

Expected<void> hand_over_run_dir(const std::filesystem::path& run_dir,
                                 const process::Sandbox& sandbox) {
  const auto give = [&](const std::filesystem::path& path) -> Expected<void> {
    if (::lchown(path.c_str(), sandbox.uid, sandbox.gid) != 0)
      return std::unexpected(errno_error(ErrorKind::io, "chown " + path.string(), errno));
    return {};
  };
  if (auto given = give(run_dir); !given)
    return given;
  std::error_code ec;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(run_dir, ec)) {
    if (auto given = give(entry.path()); !given)
      return given;
  }
  if (ec)
    return make_error(ErrorKind::io, "read " + run_dir.string() + ": " + ec.message());
  return {};
}

}  // namespace crosvisor::vmm
