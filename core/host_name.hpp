// A host's name in a cluster (docs/cluster.md): 1 to 63 of a-z, 0-9 and '-', not starting or
// ending with '-' (a DNS label; it is also the last part of etcd keys).
#pragma once

#include <string_view>

namespace crosvisor {

bool is_valid_host_name(std::string_view name);

}  // namespace crosvisor
