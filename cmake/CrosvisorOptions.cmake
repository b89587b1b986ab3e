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
  # clang (scripts/fuzz) reports libstdc++ 12's own use of get_temporary_buffer (std::stable_sort),
  # deprecated since C++17, at each instantiation in our code.
  $<$<CXX_COMPILER_ID:Clang>:-Wno-deprecated-declarations>
  # Request and option structs have a default for every member, and designated initializers name
  # only those that differ ({.vm = target, .force = true}); GCC 12 still calls the rest missing.
  -Wno-missing-field-initializers)

# scripts/fuzz: clang with libFuzzer; every target gets its coverage instrumentation, the fuzzers
# (fuzz/) libFuzzer's main. Implies the sanitizers.
option(CROSVISOR_LIBFUZZER "Build the fuzz targets with libFuzzer (clang)" OFF)
if(CROSVISOR_LIBFUZZER)
  set(CROSVISOR_SANITIZE ON)
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()

# Each function and variable in a section of its own, so crosvisord's link can place what an idle
# daemon touches together (daemon/idle-code.ld, docs/performance.md: the idle daemon).
add_compile_options(-ffunction-sections -fdata-sections)

if(CROSVISOR_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=address,undefined)
endif()

# Relative relocations packed (DT_RELR, glibc 2.36): a PIE binary's relocation table is read,
# and kept resident, by every start; packed, crosvisord's shrinks from 330 KB to a few
# (docs/performance.md: the idle daemon).
include(CheckLinkerFlag)
check_linker_flag(CXX "-Wl,-z,pack-relative-relocs" CROSVISOR_LINKER_PACKS_RELOCS)
if(CROSVISOR_LINKER_PACKS_RELOCS)
  add_link_options("-Wl,-z,pack-relative-relocs")
endif()
