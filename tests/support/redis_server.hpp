// A real redis-server for tests: its own port on 127.0.0.1, its own temporary
// folder, no persistence, stopped by its pid. Tests of the Redis driver and
// integration tests use it instead of a shared server, so runs never see each
// other's keys and nothing outlives the test process.
#pragma once

#include <chrono>
#include <csignal>

#include "support/process.hpp"

namespace brubeck::testing {

class RedisServer {
 public:
  // Starts at once on a free port; throws if it does not answer in time.
  RedisServer();
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // Starts again on the same port after stop() (a restart, as clients see it).
  void start();
  // SIGTERM lets it exit cleanly; SIGKILL is a crash (clients see a reset).
  void stop(int signal = SIGTERM);
  bool running();

  int port() const { return port_; }
  // The server's output so far, for failure messages.
  std::string output() const { return process_.output(); }

 private:
  void launch(std::chrono::milliseconds ready_within);

  TempDir dir_{"brubeck-redis"};
  int port_ = 0;
  ChildProcess process_;
};

}  // namespace brubeck::testing
