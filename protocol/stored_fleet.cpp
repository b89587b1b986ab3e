#include "protocol/stored_fleet.hpp"

#include <sys/mman.h>

#include <functional>
#include <map>

#include "protocol/fleet_json.hpp"

namespace crosvisor::protocol {
namespace {

using json = nlohmann::json;

// Calls `visit(fd index, path, writable)` for every file object ({"fd": N, "path": P}) under
// `node`.
void each_file(const json& node, const std::function<void(std::size_t, std::string, bool)>& visit) {
  if (node.is_object()) {
    if (node.contains("fd") && node["fd"].is_number_unsigned() && node.contains("path") &&
        node["path"].is_string()) {
      const bool writable = node.contains("writable") && node["writable"] == true;
      visit(node["fd"].get<std::size_t>(), node["path"].get<std::string>(), writable);
    }
    for (const auto& [key, value] : node.items())
      each_file(value, visit);
  } else if (node.is_array()) {
    for (const auto& value : node)
      each_file(value, visit);
  }
}

// A stand-in for a file that could not be reopened: an empty regular file, read-write, which the
// decoder accepts wherever a file goes and which no VMM is ever given.
Expected<UniqueFd> placeholder() {
  UniqueFd fd(::memfd_create("crosvisor-unavailable", MFD_CLOEXEC));
  if (!fd)
    return std::unexpected(errno_error(ErrorKind::io, "memfd_create", errno));
  return fd;
}

}  // namespace

Expected<std::vector<process::FileToOpen>> files_named(const json& fleet) {
  std::map<std::size_t, process::FileToOpen> by_index;
  std::optional<Error> problem;
  each_file(fleet, [&](std::size_t index, std::string path, bool writable) {
    auto [it, fresh] = by_index.try_emplace(index, process::FileToOpen{path, writable});
    if (!fresh && it->second.path != path)
      problem = Error{ErrorKind::protocol, "fd " + std::to_string(index) + " is named as " +
                                               it->second.path.string() + " and as " + path};
    it->second.writable = it->second.writable || writable;
  });
  if (problem)
    return std::unexpected(*problem);
  std::vector<process::FileToOpen> files;
  for (const auto& [index, file] : by_index) {
    if (index != files.size())
      return make_error(ErrorKind::protocol,
                        "no file is named for fd " + std::to_string(files.size()));
    files.push_back(file);
  }
  return files;
}

Expected<config::FleetSpec> fleet_from_reopened(const json& fleet,
                                                std::vector<Expected<UniqueFd>> reopened) {
  std::vector<UniqueFd> fds;
  std::map<std::size_t, std::string> failed;  // fd index -> why
  for (std::size_t i = 0; i < reopened.size(); ++i) {
    if (reopened[i]) {
      fds.push_back(std::move(*reopened[i]));
      continue;
    }
    failed[i] = reopened[i].error().message;
    auto stand_in = placeholder();
    if (!stand_in)
      return std::unexpected(stand_in.error());
    fds.push_back(std::move(*stand_in));
  }
  auto spec = fleet_from_message(fleet, std::move(fds));
  if (!spec || failed.empty())
    return spec;
  // Which VM names which fd: the message's VMs are in the spec's order.
  const json& vms = fleet["vms"];
  for (std::size_t v = 0; v < vms.size() && v < spec->vms.size(); ++v) {
    each_file(vms[v], [&](std::size_t index, const std::string&, bool) {
      auto why = failed.find(index);
      if (why != failed.end() && spec->vms[v].unavailable.empty())
        spec->vms[v].unavailable = "cannot reopen its file: " + why->second;
    });
  }
  return spec;
}

}  // namespace crosvisor::protocol
