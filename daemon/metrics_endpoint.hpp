// crosvisord --metrics ADDR: its figures for Prometheus. Each scrape asks crosvisord's own
// control socket for every VM's stats (the same request `vm stats --all-users` sends, so the
// figures are those a user sees) and adds the daemon's own (metrics/exposition.hpp).
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "crosvisor/error.hpp"
#include "metrics/http_server.hpp"

namespace crosvisor::daemon {

Expected<std::unique_ptr<metrics::HttpServer>> start_metrics(const std::string& address,
                                                             const std::filesystem::path& socket);

}  // namespace crosvisor::daemon
