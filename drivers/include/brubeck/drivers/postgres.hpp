// PostgreSQL for handler code: queries go through libpq's nonblocking API and
// wait on the shard's own reactor, so a fiber waiting for the database
// suspends while its shard keeps serving other requests. A PgPool per shard
// (PgPool::for_this_shard) caps the connections each shard opens and queues
// fibers for a free one.
//
// Errors: the server rejecting a statement (bad SQL, a constraint) throws
// PgError and leaves the connection usable; a server that is down, refuses
// or drops the connection throws Unavailable; a passed deadline throws
// Timeout (DeadlineExceeded for the request's own). After Unavailable or a
// timeout the connection is unusable: the server may still be running the
// statement, so a timed-out query is cancelled and its connection closed
// rather than reused in an unknown state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "brubeck/pipeline/condition.hpp"
#include "brubeck/pipeline/errors.hpp"
#include "brubeck/pipeline/fiber_hub.hpp"

// libpq's handles, declared here so that users need not see libpq-fe.h.
struct pg_conn;
struct pg_result;

namespace brubeck {

// The server rejected a statement. `sqlstate` is the five-character code
// (42601 syntax error, 42P01 undefined table, 23505 unique violation...); it
// is empty for errors libpq raised before anything reached the server.
struct PgError : std::runtime_error {
  PgError(const std::string& message, std::string code)
      : std::runtime_error(message), sqlstate(std::move(code)) {}
  std::string sqlstate;
};

// Text parameters for $1, $2...; nullopt is SQL NULL. Values never become
// part of the SQL text, so they cannot inject anything.
using PgParams = std::vector<std::optional<std::string>>;

// The rows of one statement, in text format. Owns its PGresult; string_views
// point into it and live as long as the PgResult.
class PgResult {
 public:
  PgResult() = default;
  explicit PgResult(pg_result* result) noexcept : result_(result) {}
  ~PgResult();
  PgResult(PgResult&& o) noexcept;
  PgResult& operator=(PgResult&& o) noexcept;
  PgResult(const PgResult&) = delete;
  PgResult& operator=(const PgResult&) = delete;

  std::size_t rows() const noexcept;
  std::size_t columns() const noexcept;
  std::string_view column_name(std::size_t column) const;
  // The index of a column by name; std::out_of_range when there is none.
  std::size_t column_index(std::string_view name) const;
  // nullopt for SQL NULL; std::out_of_range outside the result.
  std::optional<std::string_view> get(std::size_t row, std::size_t column) const;
  bool is_null(std::size_t row, std::size_t column) const;
  // Rows inserted, updated, deleted, selected... (0 for commands without a count).
  std::size_t affected_rows() const noexcept;
  // The command tag ("INSERT 0 1", "CREATE TABLE").
  std::string_view command_status() const noexcept;

 private:
  friend class PgConnection;
  pg_result* raw() const noexcept { return result_; }
  void check(std::size_t row, std::size_t column) const;
  pg_result* result_ = nullptr;
};

// One connection to the server. A connection is not shared between fibers
// (one statement at a time; a second fiber gets std::logic_error) nor between
// shards: it waits on the reactor of the calling thread.
class PgConnection {
 public:
  using Deadline = std::optional<Clock::time_point>;

  PgConnection() = default;
  ~PgConnection();
  PgConnection(PgConnection&& o) noexcept;
  PgConnection& operator=(PgConnection&& o) noexcept;
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // conninfo: libpq's "host=... port=... user=... dbname=..." or a
  // postgresql:// URI (std::invalid_argument when it does not parse). A host
  // name is resolved on the offload pool, since libpq would resolve it with a
  // blocking call. With no deadline the connect is bounded by the request's
  // deadline only: libpq's connect_timeout does not apply to a nonblocking
  // connect.
  static PgConnection connect(const std::string& conninfo, Deadline deadline = {});

  // One statement (the extended protocol allows no more), with its params.
  PgResult query(std::string_view sql, const PgParams& params = {}, Deadline deadline = {});
  // Several statements separated by semicolons, without params (schema
  // set-up, migrations); returns the last statement's result.
  PgResult execute_script(std::string_view sql, Deadline deadline = {});

  // False once the connection broke, timed out or was closed: it cannot be
  // used again.
  bool ok() const noexcept;
  // Inside BEGIN ... COMMIT (or a failed transaction awaiting ROLLBACK).
  bool in_transaction() const noexcept;
  // Cheap, nonblocking check that the server has not closed an idle
  // connection (a restart, an idle timeout): reads what has arrived.
  bool alive();
  // Closes now (no cancel is sent).
  void close() noexcept;

 private:
  explicit PgConnection(pg_conn* conn) noexcept : conn_(conn) {}
  template <class Send>
  PgResult run(Send&& send, Deadline deadline);
  bool wait(std::uint32_t events, Deadline deadline);
  // The statement is still running on the server: cancel it (on the offload
  // pool, since PQcancel blocks) and close.
  void abandon() noexcept;
  [[noreturn]] void fail_unavailable(std::string_view what);

  pg_conn* conn_ = nullptr;
  bool busy_ = false;
};

// At most `size` connections to one server, for the fibers of one shard.
// Fibers queue (first come, first served) for a free connection; connections
// that broke are dropped and new ones opened on demand, so a restarted server
// is picked up again without intervention. A statement is never retried:
// after Unavailable it may or may not have run.
class PgPool {
 public:
  using Deadline = PgConnection::Deadline;

  PgPool(std::string conninfo, std::size_t size);
  PgPool(const PgPool&) = delete;
  PgPool& operator=(const PgPool&) = delete;
  // Leases still out must be returned first.
  ~PgPool();

  // A connection held by one fiber until the Lease is destroyed: for a
  // transaction, where several statements must share a connection. A
  // connection returned inside a transaction, or broken, is closed instead of
  // being reused (closing rolls the transaction back).
  class Lease {
   public:
    Lease(Lease&& o) noexcept;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    PgConnection& operator*() const noexcept { return *conn_; }
    PgConnection* operator->() const noexcept { return conn_.get(); }

   private:
    friend class PgPool;
    Lease(PgPool* pool, std::unique_ptr<PgConnection> conn) noexcept
        : pool_(pool), conn_(std::move(conn)) {}
    PgPool* pool_;
    std::unique_ptr<PgConnection> conn_;
  };

  // Waits for a free connection (or opens one); Timeout when `deadline`
  // passes first, Unavailable when a new connection cannot be made.
  Lease acquire(Deadline deadline = {});
  // acquire() + query() on the connection: the deadline bounds both.
  PgResult query(std::string_view sql, const PgParams& params = {}, Deadline deadline = {});

  // The pool of the calling thread (shard) for conninfo, made on first use
  // with `size` (later calls' size is ignored).
  static PgPool& for_this_shard(const std::string& conninfo, std::size_t size = 4);

  std::size_t size() const noexcept { return size_; }
  // Connections open now, leased or idle.
  std::size_t open() const noexcept { return open_; }
  std::size_t idle() const noexcept { return idle_.size(); }
  const std::string& conninfo() const noexcept { return conninfo_; }

 private:
  void release(std::unique_ptr<PgConnection> conn) noexcept;

  std::string conninfo_;
  std::size_t size_;
  std::size_t open_ = 0;
  std::vector<std::unique_ptr<PgConnection>> idle_;  // most recently used last
  Mutex mutex_;
  ConditionVariable available_;
};

}  // namespace brubeck
