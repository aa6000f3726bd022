# Install rules: headers, static libraries, the CMake package (find_package(
# brubeck)), a pkg-config file, and the `brubeck new` starter tool.
#
#   find_package(brubeck CONFIG REQUIRED)      # brubeck::brubeck: every layer
#   find_package(brubeck REQUIRED COMPONENTS redis postgres)
#
# Components name the drivers (brubeck::sqlite, ::redis, ::postgres,
# ::http_client, ::zmq_socket) and brubeck::testing; asking for one the
# installed package lacks fails find_package with the list of those it has.
# brubeck_warnings is build-only ($<BUILD_INTERFACE:...>): nothing exported
# carries our warning flags.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(BRUBECK_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/brubeck)

# Every library an app may link. The drivers are whatever drivers/*.cmake
# added to brubeck::drivers; a new layer adds itself to this list.
get_target_property(BRUBECK_DRIVER_TARGETS brubeck_drivers INTERFACE_LINK_LIBRARIES)
set(BRUBECK_DRIVER_COMPONENTS "")
foreach(_t IN LISTS BRUBECK_DRIVER_TARGETS)
  string(REGEX REPLACE "^brubeck_" "" _name ${_t})
  list(APPEND BRUBECK_DRIVER_COMPONENTS ${_name})
endforeach()
set(BRUBECK_INSTALL_TARGETS brubeck brubeck_pipeline brubeck_handlers brubeck_config
  brubeck_actors brubeck_apps brubeck_drivers ${BRUBECK_DRIVER_TARGETS})
set(BRUBECK_COMPONENTS ${BRUBECK_DRIVER_COMPONENTS})
if(TARGET brubeck_testing)
  list(APPEND BRUBECK_INSTALL_TARGETS brubeck_testing)
  list(APPEND BRUBECK_COMPONENTS testing)
endif()

foreach(_t IN LISTS BRUBECK_INSTALL_TARGETS)
  string(REGEX REPLACE "^brubeck_" "" _export_name ${_t})
  set_target_properties(${_t} PROPERTIES EXPORT_NAME ${_export_name})
  # A layer that links brubeck_warnings PRIVATE without $<BUILD_INTERFACE:>
  # leaves $<LINK_ONLY:brubeck_warnings> in its interface (static library),
  # which the export refuses: drop it here rather than fail.
  get_target_property(_links ${_t} INTERFACE_LINK_LIBRARIES)
  if(_links)
    list(FILTER _links EXCLUDE REGEX "^\\$<LINK_ONLY:brubeck_warnings>$")
    set_target_properties(${_t} PROPERTIES INTERFACE_LINK_LIBRARIES "${_links}")
  endif()
endforeach()
install(TARGETS ${BRUBECK_INSTALL_TARGETS} EXPORT brubeckTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# Public headers: each layer's include/ folder, the umbrella, the version.
foreach(_dir pipeline drivers handlers config actors apps testing)
  if(IS_DIRECTORY ${PROJECT_SOURCE_DIR}/${_dir}/include)
    install(DIRECTORY ${PROJECT_SOURCE_DIR}/${_dir}/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  endif()
endforeach()
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/ ${BRUBECK_GENERATED_INCLUDE}/
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# The CMake package.
install(EXPORT brubeckTargets NAMESPACE brubeck:: DESTINATION ${BRUBECK_CMAKE_DIR})
set(BRUBECK_USE_JEMALLOC OFF)
if(TARGET PkgConfig::JEMALLOC)
  set(BRUBECK_USE_JEMALLOC ON)
endif()
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/brubeckConfig.cmake.in
  ${PROJECT_BINARY_DIR}/brubeckConfig.cmake INSTALL_DESTINATION ${BRUBECK_CMAKE_DIR})
# 0.x: a later 0.y may change the API; one major version promises nothing
# more than the same major number.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/brubeckConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/brubeckConfig.cmake
  ${PROJECT_BINARY_DIR}/brubeckConfigVersion.cmake ${PROJECT_SOURCE_DIR}/cmake/FindCAF.cmake
  DESTINATION ${BRUBECK_CMAKE_DIR})

# pkg-config: static libraries, so Libs lists them in link order, then what
# they use (CAF and Boost.Context ship no .pc file).
set(BRUBECK_PC_LIBS "-lbrubeck_apps -lbrubeck_actors -lbrubeck_handlers -lbrubeck_config")
foreach(_t IN LISTS BRUBECK_DRIVER_TARGETS)
  string(APPEND BRUBECK_PC_LIBS " -l${_t}")
endforeach()
string(APPEND BRUBECK_PC_LIBS " -lbrubeck_pipeline -lcaf_core -lboost_context")
set(BRUBECK_PC_REQUIRES
  "libzmq spdlog fmt simdjson re2 libsodium libsystemd prometheus-cpp-core nlohmann_json tomlplusplus libcurl libpq hiredis sqlite3")
if(BRUBECK_USE_JEMALLOC)
  string(APPEND BRUBECK_PC_REQUIRES " jemalloc")
endif()
# Relocatable: the prefix is found from the .pc file's own folder, so
# `cmake --install build --prefix DIR` works without reconfiguring.
file(RELATIVE_PATH BRUBECK_PC_TO_PREFIX /${CMAKE_INSTALL_LIBDIR}/pkgconfig /)
string(REGEX REPLACE "/$" "" BRUBECK_PC_TO_PREFIX "${BRUBECK_PC_TO_PREFIX}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/brubeck.pc.in ${PROJECT_BINARY_DIR}/brubeck.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/brubeck.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# `brubeck new NAME`: the tool and the starter project it copies.
configure_file(${PROJECT_SOURCE_DIR}/scaffold/brubeck.in ${PROJECT_BINARY_DIR}/brubeck @ONLY)
install(PROGRAMS ${PROJECT_BINARY_DIR}/brubeck DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/scaffold/project/
  DESTINATION ${CMAKE_INSTALL_DATADIR}/brubeck/scaffold USE_SOURCE_PERMISSIONS)

# What `cmake --install` needs built: the libraries alone, not the tests
# (deploy/test's package stage builds this target in a fresh tree).
add_custom_target(brubeck_package)
foreach(_t IN LISTS BRUBECK_INSTALL_TARGETS)
  get_target_property(_type ${_t} TYPE)
  if(_type STREQUAL "STATIC_LIBRARY")
    add_dependencies(brubeck_package ${_t})
  endif()
endforeach()
