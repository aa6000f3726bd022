// SQLite through its own thread, from fibers of a real reactor.
#include "brubeck/drivers/sqlite.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "brubeck/pipeline/spawn.hpp"
#include "support/fiber_runner.hpp"
#include "support/process.hpp"

namespace brubeck {
namespace {

using namespace std::chrono_literals;
using testing::run_fiber;

TEST(Sqlite, ParametersRoundTripAndInjectionIsInert) {
  testing::TempDir dir("brubeck-sqlite");
  auto db = SqliteDatabase::open(dir.path() + "/notes.db");
  SqliteResult rows;
  std::int64_t id = 0;
  run_fiber([&] {
    db->execute_script(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL, score REAL, extra);");
    auto evil = std::string("x'); DROP TABLE notes; --");
    id = db->query("INSERT INTO notes (text, score, extra) VALUES (?, ?, ?)",
                   {evil, 2.5, std::monostate{}})
             .last_insert_id;
    db->query("INSERT INTO notes (text, score) VALUES (?, ?)", {std::string("a\0b", 3), 1.0});
    rows = db->query("SELECT id, text, score, extra FROM notes WHERE score > ? ORDER BY id",
                     {std::int64_t{0}});
  });
  ASSERT_EQ(rows.rows.size(), 2u);
  EXPECT_EQ(rows.columns, (std::vector<std::string>{"id", "text", "score", "extra"}));
  EXPECT_EQ(std::get<std::int64_t>(rows.rows[0][0]), id);
  EXPECT_EQ(rows.text(0, 1), "x'); DROP TABLE notes; --");
  EXPECT_DOUBLE_EQ(std::get<double>(rows.rows[0][2]), 2.5);
  EXPECT_TRUE(std::holds_alternative<std::monostate>(rows.rows[0][3]));
  EXPECT_EQ(rows.text(1, 1), std::string("a\0b", 3));
}

TEST(Sqlite, ErrorsAreTypedAndTheDatabaseCarriesOn) {
  auto db = SqliteDatabase::open(":memory:");
  std::string bad_sql, constraint, arity;
  std::size_t after = 0;
  run_fiber([&] {
    db->execute_script("CREATE TABLE t (k TEXT PRIMARY KEY);");
    try {
      db->query("SELEC nonsense");
    } catch (const SqliteError& e) {
      bad_sql = e.what();
    }
    db->query("INSERT INTO t VALUES (?)", {std::string("a")});
    try {
      db->query("INSERT INTO t VALUES (?)", {std::string("a")});
    } catch (const SqliteError& e) {
      constraint = e.what();
    }
    try {
      db->query("INSERT INTO t VALUES (?)", {});
    } catch (const SqliteError& e) {
      arity = e.what();
    }
    after = db->query("SELECT k FROM t").rows.size();
  });
  EXPECT_NE(bad_sql.find("syntax error"), std::string::npos) << bad_sql;
  EXPECT_NE(constraint.find("UNIQUE"), std::string::npos) << constraint;
  EXPECT_NE(arity.find("parameters"), std::string::npos) << arity;
  EXPECT_EQ(after, 1u);
  EXPECT_THROW(SqliteDatabase::open("/nonexistent-dir/x.db"), SqliteError);
}

// Queries wait on the database's thread: a ticker on the same reactor keeps
// going while a slow query (a recursive count) runs.
TEST(Sqlite, ASlowQueryDoesNotBlockTheShard) {
  auto db = SqliteDatabase::open(":memory:");
  int ticks = 0;
  bool done = false;
  std::int64_t count = 0;
  run_fiber([&] {
    auto ticker = spawn([&] {
      while (!done) {
        this_fiber::sleep_for(2ms);
        ++ticks;
      }
    });
    auto r = db->query(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) "
        "SELECT count(*) FROM c");
    count = std::get<std::int64_t>(r.rows.at(0).at(0));
    done = true;
    ticker.join();
  });
  EXPECT_EQ(count, 3000000);
  EXPECT_GT(ticks, 3) << "the shard was blocked while the query ran";
}

}  // namespace
}  // namespace brubeck
