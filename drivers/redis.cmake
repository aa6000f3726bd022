# Redis: hiredis's async API driven by the shard's own reactor, so a fiber
# waiting for a reply suspends instead of blocking the shard thread.
pkg_check_modules(HIREDIS REQUIRED IMPORTED_TARGET hiredis)

add_library(brubeck_redis STATIC ${CMAKE_CURRENT_SOURCE_DIR}/src/redis.cpp)
add_library(brubeck::redis ALIAS brubeck_redis)
target_include_directories(brubeck_redis PUBLIC
  $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>)
target_link_libraries(brubeck_redis
  PUBLIC brubeck::pipeline
  PRIVATE PkgConfig::HIREDIS $<BUILD_INTERFACE:brubeck_warnings>)

target_link_libraries(brubeck_drivers INTERFACE brubeck_redis)
