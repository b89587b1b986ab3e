#include "vmm/confinement.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <vector>

namespace crosvisor::vmm {
namespace {

// A user's ids and groups from the user database (NSS: never in a child between clone and
// exec, so here).
struct Account {
  uid_t uid;
  gid_t gid;
  std::vector<gid_t> groups;
};

std::optional<Account> account_of(const passwd& entry) {
  Account account{entry.pw_uid, entry.pw_gid, {}};
  int count = 32;
  for (int attempt = 0; attempt < 4; ++attempt) {
    account.groups.resize(static_cast<std::size_t>(count));
    if (::getgrouplist(entry.pw_name, entry.pw_gid, account.groups.data(), &count) >= 0) {
      account.groups.resize(static_cast<std::size_t>(count));
      return account;
    }
  }
  return std::nullopt;
}

}  // namespace

Expected<process::Sandbox> confinement_for(const VmSpec& spec, const std::string& vmm_user,
                                           const std::filesystem::path& mount_point) {
  std::optional<Account> account;
  std::vector<char> buffer(16384);
  passwd entry{};
  passwd* found = nullptr;
  if (spec.owner_uid && *spec.owner_uid != 0) {
    ::getpwuid_r(*spec.owner_uid, &entry, buffer.data(), buffer.size(), &found);
    // A uid without a name (a container's, an LDAP outage) still runs as itself, groupless.
    account = found ? account_of(*found) : Account{*spec.owner_uid, *spec.owner_uid, {}};
  } else {
    ::getpwnam_r(vmm_user.c_str(), &entry, buffer.data(), buffer.size(), &found);
    if (!found)
      return make_error(ErrorKind::invalid_config,
                        "VMM user '" + vmm_user +
                            "' is not in the user database: VMMs of VMs without an owner run as "
                            "this user (crosvisord --vmm-user)");
    if (found->pw_uid == 0)
      return make_error(ErrorKind::invalid_config,
                        "VMM user '" + vmm_user + "' is root: VMMs never run as root");
    account = account_of(*found);
  }
  if (!account)
    return make_error(ErrorKind::launch, "cannot read the groups of uid " +
                                             std::to_string(spec.owner_uid.value_or(0)));
  process::Sandbox sandbox;
  sandbox.uid = account->uid;
  sandbox.gid = account->gid;
  sandbox.groups = std::move(account->groups);
  sandbox.mount_point = mount_point;
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
