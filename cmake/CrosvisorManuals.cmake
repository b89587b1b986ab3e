# Manual pages and the bash completion of `vm`, generated at build time (target `manuals`, part of
# ALL) and installed by `cmake --install`:
#   man/vm.1, man/crosvisord.8     help2man, from the programs' own --help and --version, plus
#                                  man/vm.h2m and man/crosvisord.h2m for what --help does not say
#   man/crosvisor-vm.toml.5,       scdoc, from man/crosvisor-vm.toml.5.scd and
#   man/crosvisor-fleet.toml.5     man/crosvisor-fleet.toml.5.scd
#   completion/vm                  `vm completion bash`, from vm's own CLI11 definition
#                                  (cli/completion.cpp)
# all under the build directory. CROSVISOR_MAN_DIR and CROSVISOR_BASH_COMPLETION say where, for
# the tests (tests/integration/manuals_test.cpp).

find_program(CROSVISOR_HELP2MAN help2man)
if(NOT CROSVISOR_HELP2MAN)
  message(FATAL_ERROR "help2man not found: it writes the manual pages vm(1) and crosvisord(8) "
                      "(Debian package help2man; scripts/setup installs it)")
endif()
find_program(CROSVISOR_SCDOC scdoc)
if(NOT CROSVISOR_SCDOC)
  message(FATAL_ERROR "scdoc not found: it writes the manual pages crosvisor-vm.toml(5) and "
                      "crosvisor-fleet.toml(5) (Debian package scdoc; scripts/setup installs it)")
endif()

set(CROSVISOR_MAN_DIR "${CMAKE_BINARY_DIR}/man")
set(CROSVISOR_BASH_COMPLETION "${CMAKE_BINARY_DIR}/completion/vm")
file(MAKE_DIRECTORY "${CROSVISOR_MAN_DIR}" "${CMAKE_BINARY_DIR}/completion")

# A program's page from its --help and --version. help2man runs it by its bare name, found first
# on PATH in the build directory, so that the page's usage lines say `vm`, not the path the build
# ran it by (CLI11 names the program after argv[0]).
function(crosvisor_help2man target section)
  set(page "${CROSVISOR_MAN_DIR}/${target}.${section}")
  set(include_file "${PROJECT_SOURCE_DIR}/man/${target}.h2m")
  add_custom_command(OUTPUT "${page}"
    COMMAND "${CMAKE_COMMAND}" -E env --modify "PATH=path_list_prepend:$<TARGET_FILE_DIR:${target}>"
            "${CROSVISOR_HELP2MAN}" --no-info --section=${section} --include=${include_file}
            --output=${page}.tmp ${target}
    COMMAND "${CMAKE_COMMAND}" -E rename "${page}.tmp" "${page}"
    DEPENDS ${target} "${include_file}"
    COMMENT "Writing ${target}(${section}) with help2man"
    VERBATIM)
endfunction()

# A file format's page from its scdoc source.
function(crosvisor_scdoc name section)
  set(page "${CROSVISOR_MAN_DIR}/${name}.${section}")
  set(source "${PROJECT_SOURCE_DIR}/man/${name}.${section}.scd")
  add_custom_command(OUTPUT "${page}"
    COMMAND sh -c [["$1" < "$2" > "$3.tmp" && mv "$3.tmp" "$3"]] sh "${CROSVISOR_SCDOC}" "${source}"
            "${page}"
    DEPENDS "${source}"
    COMMENT "Writing ${name}(${section}) with scdoc"
    VERBATIM)
endfunction()

crosvisor_help2man(vm 1)
crosvisor_help2man(crosvisord 8)
crosvisor_scdoc(crosvisor-vm.toml 5)
crosvisor_scdoc(crosvisor-fleet.toml 5)

add_custom_command(OUTPUT "${CROSVISOR_BASH_COMPLETION}"
  COMMAND sh -c [["$1" completion bash > "$2.tmp" && mv "$2.tmp" "$2"]] sh "$<TARGET_FILE:vm>"
          "${CROSVISOR_BASH_COMPLETION}"
  DEPENDS vm
  COMMENT "Writing the bash completion of vm"
  VERBATIM)

add_custom_target(manuals ALL DEPENDS
  "${CROSVISOR_MAN_DIR}/vm.1" "${CROSVISOR_MAN_DIR}/crosvisord.8"
  "${CROSVISOR_MAN_DIR}/crosvisor-vm.toml.5" "${CROSVISOR_MAN_DIR}/crosvisor-fleet.toml.5"
  "${CROSVISOR_BASH_COMPLETION}")

install(FILES "${CROSVISOR_MAN_DIR}/vm.1" DESTINATION "${CMAKE_INSTALL_MANDIR}/man1")
install(FILES "${CROSVISOR_MAN_DIR}/crosvisor-vm.toml.5" "${CROSVISOR_MAN_DIR}/crosvisor-fleet.toml.5"
  DESTINATION "${CMAKE_INSTALL_MANDIR}/man5")
install(FILES "${CROSVISOR_MAN_DIR}/crosvisord.8" DESTINATION "${CMAKE_INSTALL_MANDIR}/man8")
install(FILES "${CROSVISOR_BASH_COMPLETION}"
  DESTINATION "${CMAKE_INSTALL_DATADIR}/bash-completion/completions")
