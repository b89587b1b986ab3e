// A one-shot QMP exchange: connect, negotiate capabilities, run one command, hang up. Runs on the
// reactor's io_context; never blocks it. Events that arrive before a reply are skipped.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>

#include "crosvisor/error.hpp"

namespace boost::asio {
class io_context;
}

namespace crosvisor {

using QmpDone = std::function<void(Expected<void>)>;

void qmp_execute(boost::asio::io_context& io, const std::filesystem::path& socket,
                 std::string command, std::chrono::milliseconds timeout, QmpDone done);

}  // namespace crosvisor
