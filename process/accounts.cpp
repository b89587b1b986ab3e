#include "process/accounts.hpp"

#include <grp.h>
#include <pwd.h>

namespace crosvisor::process {
namespace {

// The entry's ids and groups; its primary group alone when the group list cannot be read.
Account account_from(const passwd& entry, gid_t primary) {
  Account account{entry.pw_uid, primary, {}};
  int count = 64;
  account.groups.resize(static_cast<std::size_t>(count));
  if (::getgrouplist(entry.pw_name, primary, account.groups.data(), &count) < 0) {
    account.groups.resize(static_cast<std::size_t>(count));  // count is now what is needed
    if (::getgrouplist(entry.pw_name, primary, account.groups.data(), &count) < 0)
      return {entry.pw_uid, primary, {primary}};
  }
  account.groups.resize(static_cast<std::size_t>(count));
  return account;
}

}  // namespace

std::optional<Account> account_of(uid_t uid, std::optional<gid_t> primary) {
  std::vector<char> buffer(16384);
  passwd entry{};
  passwd* found = nullptr;
  if (::getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found) != 0 || found == nullptr)
    return std::nullopt;
  return account_from(*found, primary.value_or(found->pw_gid));
}

std::optional<Account> account_named(const std::string& name) {
  std::vector<char> buffer(16384);
  passwd entry{};
  passwd* found = nullptr;
  if (::getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found) != 0 ||
      found == nullptr)
    return std::nullopt;
  return account_from(*found, found->pw_gid);
}

}  // namespace crosvisor::process
