#include "cluster/libcurl.hpp"

#include <dlfcn.h>

#include <string>

namespace crosvisor::cluster {
namespace {

// Looks `name` up into `function`; false (dlerror says why) when it is missing.
template <class Function>
bool bind(void* library, const char* name, Function& function) {
  function = reinterpret_cast<Function>(::dlsym(library, name));
  return function != nullptr;
}

Expected<const LibCurl*> load() {
  // Never closed: its handles live as long as the process's etcd clients.
  void* library = ::dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr)
    return make_error(ErrorKind::io, std::string("cannot load libcurl: ") + ::dlerror());
  static LibCurl curl;
  CURLcode (*global_init)(long) = nullptr;
  if (!bind(library, "curl_global_init", global_init) ||
      !bind(library, "curl_easy_init", curl.easy_init) ||
      !bind(library, "curl_easy_setopt", curl.easy_setopt) ||
      !bind(library, "curl_easy_perform", curl.easy_perform) ||
      !bind(library, "curl_easy_getinfo", curl.easy_getinfo) ||
      !bind(library, "curl_easy_strerror", curl.easy_strerror) ||
      !bind(library, "curl_easy_cleanup", curl.easy_cleanup))
    return make_error(ErrorKind::io, std::string("libcurl lacks a function: ") + ::dlerror());
  // libcurl's global state, before any handle (it is not thread-safe: hence once).
  if (const CURLcode code = global_init(CURL_GLOBAL_DEFAULT); code != CURLE_OK)
    return make_error(ErrorKind::io, "libcurl: global initialisation failed (" +
                                         std::to_string(static_cast<int>(code)) + ")");
  return &curl;
}

}  // namespace

Expected<const LibCurl*> libcurl() {
  static const Expected<const LibCurl*> loaded = load();  // C++ makes it once, thread-safely
  return loaded;
}

}  // namespace crosvisor::cluster
