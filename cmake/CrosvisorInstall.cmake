# `cmake --install`: the library (its static parts), the public headers, the programs, and a CMake
# package so that another project does
#   find_package(crosvisor REQUIRED)
#   target_link_libraries(app PRIVATE crosvisor::crosvisor)
include(CMakePackageConfigHelpers)

set(CROSVISOR_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/crosvisor")

install(TARGETS crosvisor crosvisor_vmm crosvisor_lifecycle crosvisor_process crosvisor_config
                crosvisor_disk crosvisor_vsock crosvisor_net crosvisor_store crosvisor_core crosvisor_cdisk_proto
                crosvisor_warnings
  EXPORT crosvisorTargets
  ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}")
install(DIRECTORY include/crosvisor DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
install(TARGETS vm crosvisord RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}")

# systemd units (docs/state.md), naming the programs where this install puts them: made at install
# time, so that `cmake --install --prefix P` gets P's paths. lib/systemd/system under the prefix
# is on systemd's unit path for /usr and /usr/local.
foreach(unit crosvisord.service crosvisor-guests.service)
  install(CODE "
    set(CROSVISOR_BINDIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}\")
    configure_file(\"${PROJECT_SOURCE_DIR}/systemd/${unit}.in\"
                   \"${PROJECT_BINARY_DIR}/systemd/${unit}\" @ONLY)")
  install(FILES "${PROJECT_BINARY_DIR}/systemd/${unit}" DESTINATION lib/systemd/system)
endforeach()
install(EXPORT crosvisorTargets NAMESPACE crosvisor:: DESTINATION "${CROSVISOR_CMAKE_DIR}")

configure_package_config_file(cmake/crosvisorConfig.cmake.in
  "${CMAKE_CURRENT_BINARY_DIR}/crosvisorConfig.cmake"
  INSTALL_DESTINATION "${CROSVISOR_CMAKE_DIR}")
write_basic_package_version_file("${CMAKE_CURRENT_BINARY_DIR}/crosvisorConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion)
install(FILES "${CMAKE_CURRENT_BINARY_DIR}/crosvisorConfig.cmake"
              "${CMAKE_CURRENT_BINARY_DIR}/crosvisorConfigVersion.cmake"
              cmake/FindCAF.cmake
  DESTINATION "${CROSVISOR_CMAKE_DIR}")
