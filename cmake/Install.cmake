# `cmake --install` lays out: bin/tune, lib/tune/plugins/*.so, include/tune/*.h (the SDK), and
# lib/cmake/tune (find_package(tune) with tune::sdk and tune_add_plugin) for out-of-tree plugins.
include(CMakePackageConfigHelpers)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/core/include/tune DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_BINARY_DIR}/include/tune/build_info.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/tune)
install(TARGETS tune_sdk EXPORT tuneTargets)
set(TUNE_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/tune)
install(EXPORT tuneTargets NAMESPACE tune:: DESTINATION ${TUNE_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/tuneConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/tuneConfig.cmake
                              INSTALL_DESTINATION ${TUNE_CMAKE_DIR}
                              PATH_VARS TUNE_PLUGIN_DIR)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/tuneConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/tuneConfig.cmake ${PROJECT_BINARY_DIR}/tuneConfigVersion.cmake
              ${PROJECT_SOURCE_DIR}/cmake/TunePlugin.cmake
        DESTINATION ${TUNE_CMAKE_DIR})
