# SQLite: the embedded database that needs no server.
pkg_check_modules(SQLITE3 REQUIRED IMPORTED_TARGET sqlite3)
add_library(brubeck_sqlite STATIC ${CMAKE_CURRENT_SOURCE_DIR}/src/sqlite.cpp)
add_library(brubeck::sqlite ALIAS brubeck_sqlite)
target_include_directories(brubeck_sqlite PUBLIC
  $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>)
target_link_libraries(brubeck_sqlite PUBLIC brubeck::pipeline
  PRIVATE PkgConfig::SQLITE3 $<BUILD_INTERFACE:brubeck_warnings>)
target_link_libraries(brubeck_drivers INTERFACE brubeck_sqlite)
