// Test support: a throwaway PostgreSQL server on a loopback port, for tests
// of the PostgreSQL driver.
//
// PostgreSQL refuses to run as root: when the tests run as root (CI), initdb
// and the server run as the `postgres` user (through setpriv, which execs in
// place, so the server is our own child and is stopped by its pid), in a
// temporary folder that user owns. The cluster is made once per test process
// (initdb takes about a second) and copied for every server.
#pragma once

#include <optional>
#include <string>

#include "support/process.hpp"

namespace brubeck::testing {

class PostgresServer {
 public:
  // Starts at once and returns when a query gets an answer (bounded: throws
  // with the server's log if it does not start).
  PostgresServer();
  // Stops the server and removes its folder.
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  int port() const { return port_; }
  // "host=127.0.0.1 port=P user=postgres dbname=postgres"
  std::string conninfo() const;

  // Fast shutdown (SIGINT: sessions are terminated, not waited for); no-op
  // when already stopped.
  void stop();
  // Starts again on the same port and data after stop().
  void start();
  bool running();
  // What the server has written to its log so far.
  std::string log() const;

 private:
  void launch();

  TempDir dir_;
  std::string data_dir_;
  std::string socket_dir_;
  int port_ = 0;
  ChildProcess server_;
};

}  // namespace brubeck::testing
