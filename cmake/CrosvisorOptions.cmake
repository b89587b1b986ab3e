# Compiler settings shared by every crosvisor target: warnings as errors, optional sanitizers,
# ccache when the machine has it.
option(CROSVISOR_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)
option(CROSVISOR_WERROR "Treat warnings as errors" ON)

find_program(CCACHE_PROGRAM ccache)
if(CCACHE_PROGRAM)
  set(CMAKE_CXX_COMPILER_LAUNCHER "${CCACHE_PROGRAM}")
endif()

add_library(crosvisor_warnings INTERFACE)
target_compile_options(crosvisor_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align
  -Wimplicit-fallthrough $<$<BOOL:${CROSVISOR_WERROR}>:-Werror>
  # GCC 12 reports false -Wrestrict hits inside libstdc++'s std::string at -O2 (GCC PR 105329).
  $<$<CXX_COMPILER_ID:GNU>:-Wno-restrict>
  # Request and option structs have a default for every member, and designated initializers name
  # only those that differ ({.vm = target, .force = true}); GCC 12 still calls the rest missing.
  -Wno-missing-field-initializers)

if(CROSVISOR_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=address,undefined)
endif()
