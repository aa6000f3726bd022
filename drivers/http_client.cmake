# HTTP client for handler code: libcurl's multi-socket API on the shard's reactor.
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
add_library(brubeck_http_client STATIC ${CMAKE_CURRENT_SOURCE_DIR}/src/http_client.cpp)
add_library(brubeck::http_client ALIAS brubeck_http_client)
target_include_directories(brubeck_http_client PUBLIC
  $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>)
target_link_libraries(brubeck_http_client
  PUBLIC brubeck::pipeline
  PRIVATE PkgConfig::CURL $<BUILD_INTERFACE:brubeck_warnings>)
target_link_libraries(brubeck_drivers INTERFACE brubeck_http_client)
