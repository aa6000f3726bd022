// SQLite for handler code: the embedded default that needs no server.
//
// SQLite's calls block on disk I/O and locks, so each database owns one
// connection on one thread of its own; a query goes there and the calling
// fiber waits (its shard serves other requests meanwhile). One thread per
// database also serialises writers, which SQLite needs anyway; WAL mode keeps
// readers in other processes unblocked.
//
// Errors: a bad statement or a constraint is a SqliteError (500 if it
// escapes), a database locked beyond the busy timeout is Unavailable (503), a
// passed deadline Timeout (504).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "brubeck/pipeline/fiber_hub.hpp"

namespace brubeck {

// NULL, INTEGER, REAL or TEXT/BLOB.
using SqliteValue = std::variant<std::monostate, std::int64_t, double, std::string>;

struct SqliteError : std::runtime_error {
  SqliteError(int code, const std::string& message) : std::runtime_error(message), code(code) {}
  int code;  // SQLite's extended result code
};

struct SqliteResult {
  std::vector<std::string> columns;
  std::vector<std::vector<SqliteValue>> rows;
  std::int64_t changes = 0;         // rows changed by an INSERT/UPDATE/DELETE
  std::int64_t last_insert_id = 0;  // rowid of the last INSERT

  // The value as text ("" for NULL), for quick rendering.
  std::string text(std::size_t row, std::size_t column) const;
};

class SqliteDatabase {
 public:
  using Deadline = std::optional<Clock::time_point>;

  // Opens (creating it if needed) the database at `path` (":memory:" for a
  // private in-memory one), then runs `init_script` (e.g. CREATE TABLE IF
  // NOT EXISTS ...). Any thread, before serving: it blocks until done.
  // Throws SqliteError.
  static std::shared_ptr<SqliteDatabase> open(const std::string& path,
                                              const std::string& init_script = {});
  ~SqliteDatabase();
  SqliteDatabase(const SqliteDatabase&) = delete;
  SqliteDatabase& operator=(const SqliteDatabase&) = delete;

  // From a fiber: runs one statement with `?` parameters bound in order.
  SqliteResult query(std::string sql, std::vector<SqliteValue> params = {}, Deadline deadline = {});
  // From a fiber: runs several statements, no parameters (schema set-up).
  void execute_script(std::string sql, Deadline deadline = {});

 private:
  struct Impl;
  explicit SqliteDatabase(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace brubeck
