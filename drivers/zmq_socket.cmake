# ZeroMQ sockets for handler code, waited on through ZMQ_FD on the shard's reactor.
add_library(brubeck_zmq_socket STATIC ${CMAKE_CURRENT_SOURCE_DIR}/src/zmq_socket.cpp)
add_library(brubeck::zmq_socket ALIAS brubeck_zmq_socket)
target_include_directories(brubeck_zmq_socket PUBLIC
  $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>)
target_link_libraries(brubeck_zmq_socket
  PUBLIC brubeck::pipeline cppzmq
  PRIVATE $<BUILD_INTERFACE:brubeck_warnings>)
target_link_libraries(brubeck_drivers INTERFACE brubeck_zmq_socket)
