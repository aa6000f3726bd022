#include "brubeck/drivers/sqlite.hpp"

#include <sqlite3.h>

#include <future>

#include "brubeck/pipeline/errors.hpp"
#include "brubeck/pipeline/offload.hpp"

namespace brubeck {

namespace {

[[noreturn]] void fail(sqlite3* db, int rc, std::string_view what) {
  std::string message = std::string(what) + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  int primary = rc & 0xff;
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED)
    throw Unavailable("sqlite: database is locked (" + message + ")");
  throw SqliteError(rc, "sqlite: " + message);
}

struct Statement {
  sqlite3_stmt* stmt = nullptr;
  ~Statement() { sqlite3_finalize(stmt); }
};

}  // namespace

std::string SqliteResult::text(std::size_t row, std::size_t column) const {
  const auto& v = rows.at(row).at(column);
  if (auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  if (auto* d = std::get_if<double>(&v)) return std::to_string(*d);
  if (auto* s = std::get_if<std::string>(&v)) return *s;
  return {};
}

struct SqliteDatabase::Impl {
  // One thread: the connection is only ever touched there.
  OffloadPool thread{1, 4096};
  sqlite3* db = nullptr;

  ~Impl() {
    // Close on the database's own thread, after every queued query.
    std::promise<void> closed;
    if (thread.try_submit([this, &closed] {
          sqlite3_close_v2(db);
          closed.set_value();
        }))
      closed.get_future().wait();
    else
      sqlite3_close_v2(db);
  }

  void open(const std::string& path) {
    int rc =
        sqlite3_open_v2(path.c_str(), &db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) fail(db, rc, "open " + path);
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, 2000);
    if (path != ":memory:") {
      rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
      if (rc != SQLITE_OK) fail(db, rc, "journal_mode=WAL");
    }
  }

  void exec(const std::string& sql) {
    char* error = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
    if (rc != SQLITE_OK) {
      std::string message = error ? error : sqlite3_errstr(rc);
      sqlite3_free(error);
      throw SqliteError(rc, "sqlite: " + message);
    }
  }

  SqliteResult run(const std::string& sql, const std::vector<SqliteValue>& params) {
    Statement st;
    const char* tail = nullptr;
    int rc = sqlite3_prepare_v2(db, sql.c_str(), static_cast<int>(sql.size()), &st.stmt, &tail);
    if (rc != SQLITE_OK) fail(db, rc, "prepare");
    if (st.stmt == nullptr) return {};  // only a comment or whitespace
    if (tail != nullptr &&
        std::string_view(tail).find_first_not_of(" \t\r\n;") != std::string_view::npos)
      throw SqliteError(SQLITE_MISUSE, "sqlite: query() takes one statement; use execute_script()");
    if (static_cast<std::size_t>(sqlite3_bind_parameter_count(st.stmt)) != params.size())
      throw SqliteError(SQLITE_RANGE, "sqlite: the statement has " +
                                          std::to_string(sqlite3_bind_parameter_count(st.stmt)) +
                                          " parameters, " + std::to_string(params.size()) +
                                          " given");
    for (std::size_t i = 0; i < params.size(); ++i) {
      int idx = static_cast<int>(i + 1);
      const auto& p = params[i];
      if (auto* v = std::get_if<std::int64_t>(&p))
        rc = sqlite3_bind_int64(st.stmt, idx, *v);
      else if (auto* d = std::get_if<double>(&p))
        rc = sqlite3_bind_double(st.stmt, idx, *d);
      else if (auto* s = std::get_if<std::string>(&p))
        rc = sqlite3_bind_text64(st.stmt, idx, s->data(), s->size(), SQLITE_TRANSIENT, SQLITE_UTF8);
      else
        rc = sqlite3_bind_null(st.stmt, idx);
      if (rc != SQLITE_OK) fail(db, rc, "bind");
    }
    SqliteResult result;
    int ncols = sqlite3_column_count(st.stmt);
    for (int c = 0; c < ncols; ++c) result.columns.emplace_back(sqlite3_column_name(st.stmt, c));
    while ((rc = sqlite3_step(st.stmt)) == SQLITE_ROW) {
      auto& row = result.rows.emplace_back();
      row.reserve(static_cast<std::size_t>(ncols));
      for (int c = 0; c < ncols; ++c) {
        switch (sqlite3_column_type(st.stmt, c)) {
          case SQLITE_INTEGER:
            row.emplace_back(static_cast<std::int64_t>(sqlite3_column_int64(st.stmt, c)));
            break;
          case SQLITE_FLOAT:
            row.emplace_back(sqlite3_column_double(st.stmt, c));
            break;
          case SQLITE_NULL:
            row.emplace_back(std::monostate{});
            break;
          default: {
            auto* bytes = static_cast<const char*>(sqlite3_column_blob(st.stmt, c));
            auto n = static_cast<std::size_t>(sqlite3_column_bytes(st.stmt, c));
            row.emplace_back(std::string(bytes ? bytes : "", n));
          }
        }
      }
    }
    if (rc != SQLITE_DONE) fail(db, rc, "step");
    result.changes = sqlite3_changes64(db);
    result.last_insert_id = sqlite3_last_insert_rowid(db);
    return result;
  }
};

SqliteDatabase::SqliteDatabase(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SqliteDatabase::~SqliteDatabase() = default;

std::shared_ptr<SqliteDatabase> SqliteDatabase::open(const std::string& path,
                                                     const std::string& init_script) {
  auto impl = std::make_unique<Impl>();
  // Opening touches the file: on the database's thread, waited for here
  // (from a fiber this briefly blocks; apps open databases at start-up).
  std::promise<void> opened;
  auto* raw = impl.get();
  if (!raw->thread.try_submit([raw, &path, &init_script, &opened] {
        try {
          raw->open(path);
          if (!init_script.empty()) raw->exec(init_script);
          opened.set_value();
        } catch (...) {
          opened.set_exception(std::current_exception());
        }
      }))
    throw Unavailable("sqlite: cannot queue open");
  opened.get_future().get();
  return std::shared_ptr<SqliteDatabase>(new SqliteDatabase(std::move(impl)));
}

SqliteResult SqliteDatabase::query(std::string sql, std::vector<SqliteValue> params,
                                   Deadline deadline) {
  auto* impl = impl_.get();
  // The job holds the statement text and parameters by value: a fiber that
  // gives up (deadline) leaves the job running on data it owns.
  return offload(
      impl->thread,
      [impl, sql = std::move(sql), params = std::move(params)] { return impl->run(sql, params); },
      deadline);
}

void SqliteDatabase::execute_script(std::string sql, Deadline deadline) {
  auto* impl = impl_.get();
  offload(
      impl->thread, [impl, sql = std::move(sql)] { impl->exec(sql); }, deadline);
}

}  // namespace brubeck
