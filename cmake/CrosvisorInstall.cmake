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
