// Users as the user database (NSS) knows them now: ids and supplementary groups, for a child
// that drops to a user (open_as.hpp, a confined VMM). NSS may block (LDAP): never call these on
// an actor's thread.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace crosvisor::process {

struct Account {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary, the primary gid among them
};

// Nothing for a user the database does not know. `primary`: the group to count as its primary
// one (a gid recorded earlier) instead of the database's.
std::optional<Account> account_of(uid_t uid, std::optional<gid_t> primary = std::nullopt);
std::optional<Account> account_named(const std::string& name);

}  // namespace crosvisor::process
