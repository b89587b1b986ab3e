#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "process/spawner.hpp"

// A test executable serves as a VMM spawner too (process/spawner.hpp), as crosvisord does, so
// that tests can start one from /proc/self/exe.
int main(int argc, char** argv) {
  crosvisor::process::serve_if_spawner(argc, argv);
  return Catch::Session().run(argc, argv);
}
