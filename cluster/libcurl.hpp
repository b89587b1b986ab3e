// libcurl, loaded the first time an etcd client is opened rather than at every start: a
// crosvisord outside a cluster never maps libcurl and the TLS, HTTP/2, LDAP and SSH libraries
// behind it (docs/performance.md: the idle daemon). The functions the etcd client calls.
#pragma once

#include <curl/curl.h>

#include "crosvisor/error.hpp"

namespace crosvisor::cluster {

struct LibCurl {
  CURL* (*easy_init)();
  CURLcode (*easy_setopt)(CURL*, CURLoption, ...);
  CURLcode (*easy_perform)(CURL*);
  CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...);
  const char* (*easy_strerror)(CURLcode);
  void (*easy_cleanup)(CURL*);
};

// Loaded and globally initialised once per process (thread-safe); an io error when libcurl
// (Debian's libcurl4) is not installed.
Expected<const LibCurl*> libcurl();

}  // namespace crosvisor::cluster
