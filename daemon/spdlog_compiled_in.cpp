// spdlog's compiled part, built into crosvisord rather than loaded as libspdlog.so.
//
// Why: a shared library is resident by the 64 KiB windows of it a process touches (the kernel's
// fault-around), about 0.5 MiB for spdlog in an idle daemon; compiled in, only the code it runs
// is resident, placed with the rest of the idle code (daemon/idle-code.ld). The rest of the tree,
// and every embedder of libcrosvisor, keeps Debian's shared spdlog: this file is linked into
// crosvisord alone, whose link then needs no libspdlog.so (--as-needed; a test fails a
// crosvisord that still needs it, which would mean two spdlog registries in one process).
//
// Debian's headers in their compiled-library mode (SPDLOG_COMPILED_LIB, the spdlog::spdlog
// target) define nothing out of line; their -inl.h files hold the definitions, and templates
// are instantiated here for the loggers and sinks crosvisord uses.
#include <spdlog/common-inl.h>
#include <spdlog/details/backtracer-inl.h>
#include <spdlog/details/file_helper-inl.h>
#include <spdlog/details/log_msg-inl.h>
#include <spdlog/details/log_msg_buffer-inl.h>
#include <spdlog/details/os-inl.h>
#include <spdlog/details/periodic_worker-inl.h>
#include <spdlog/details/registry-inl.h>
#include <spdlog/logger-inl.h>
#include <spdlog/pattern_formatter-inl.h>
#include <spdlog/sinks/ansicolor_sink-inl.h>
#include <spdlog/sinks/base_sink-inl.h>
#include <spdlog/sinks/basic_file_sink-inl.h>
#include <spdlog/sinks/sink-inl.h>
#include <spdlog/sinks/stdout_color_sinks-inl.h>
#include <spdlog/spdlog-inl.h>

#include <mutex>

template class spdlog::sinks::base_sink<std::mutex>;
template class spdlog::sinks::basic_file_sink<std::mutex>;
template class spdlog::sinks::ansicolor_sink<spdlog::details::console_mutex>;
template class spdlog::sinks::ansicolor_stderr_sink<spdlog::details::console_mutex>;
template std::shared_ptr<spdlog::logger> spdlog::stderr_color_mt<spdlog::synchronous_factory>(
    const std::string& logger_name, spdlog::color_mode mode);
