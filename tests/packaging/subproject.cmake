# cmake -DBRUBECK_SOURCE_DIR=... -DWORK_DIR=... -P subproject.cmake
# Configures tests/packaging/subproject (a parent that add_subdirectory()s
# brubeck) and fails if the tree has brubeck's tests, benchmarks or demo, or
# lacks its libraries.
file(REMOVE_RECURSE "${WORK_DIR}")
execute_process(
  COMMAND ${CMAKE_COMMAND} -S "${CMAKE_CURRENT_LIST_DIR}/subproject" -B "${WORK_DIR}"
    -DBRUBECK_SOURCE_DIR=${BRUBECK_SOURCE_DIR} -DCMAKE_BUILD_TYPE=Release
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "configuring the parent project failed:\n${out}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build "${WORK_DIR}" --target help
  RESULT_VARIABLE rc OUTPUT_VARIABLE targets ERROR_VARIABLE targets)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "listing the targets failed:\n${targets}")
endif()
foreach(wanted parent_app brubeck_apps brubeck_pipeline)
  if(NOT targets MATCHES "\\.\\.\\. ${wanted}\n")
    message(FATAL_ERROR "target ${wanted} missing from the parent's tree:\n${targets}")
  endif()
endforeach()
foreach(unwanted "test_[a-z_]+" "bench_[a-z_]+" brubeck_demo m2_c_handler brubeck_test_support)
  if(targets MATCHES "\\.\\.\\. (${unwanted})\n")
    message(FATAL_ERROR "brubeck as a subproject added ${CMAKE_MATCH_1}:\n${targets}")
  endif()
endforeach()
if(EXISTS "${WORK_DIR}/brubeck/CTestTestfile.cmake" OR EXISTS "${WORK_DIR}/brubeck/tests")
  message(FATAL_ERROR "brubeck as a subproject registered tests")
endif()
message(STATUS "subproject: libraries only, no tests, benchmarks or demo")
