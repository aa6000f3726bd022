# PostgreSQL over libpq's nonblocking API, waiting on the shard's own reactor.
pkg_check_modules(LIBPQ REQUIRED IMPORTED_TARGET libpq)

add_library(brubeck_postgres STATIC ${CMAKE_CURRENT_SOURCE_DIR}/src/postgres.cpp)
add_library(brubeck::postgres ALIAS brubeck_postgres)
target_include_directories(brubeck_postgres PUBLIC
  $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>)
target_link_libraries(brubeck_postgres
  PUBLIC brubeck::pipeline
  PRIVATE PkgConfig::LIBPQ $<BUILD_INTERFACE:brubeck_warnings>)

target_link_libraries(brubeck_drivers INTERFACE brubeck_postgres)
