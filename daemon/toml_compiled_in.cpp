// toml++'s compiled part, built into crosvisord rather than loaded as libtomlplusplus.so (as
// spdlog, daemon/spdlog_compiled_in.cpp says why): an idle daemon parses no TOML, and compiled in,
// toml++ costs it nothing resident. The rest of the tree and libcrosvisor's embedders keep the
// shared library; toml++'s own way to compile it into one translation unit of a program.
#define TOML_IMPLEMENTATION 1
#include <toml++/toml.h>
