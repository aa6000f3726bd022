// The PostgreSQL driver against a real server: every test body runs as a
// fiber of a real reactor (run_fiber), the way handler code runs on a shard.
#include "brubeck/drivers/postgres.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "brubeck/pipeline/offload.hpp"
#include "brubeck/pipeline/spawn.hpp"
#include "support/fiber_runner.hpp"
#include "support/postgres_server.hpp"
#include "support/process.hpp"
#include "support/shared_server.hpp"

namespace brubeck {
namespace {

using namespace std::chrono_literals;
using testing::PostgresServer;
using testing::run_fiber;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string text(const PgResult& r, std::size_t row, std::size_t column) {
  auto v = r.get(row, column);
  return v ? std::string(*v) : std::string("<null>");
}

class PostgresTest : public ::testing::Test {
 protected:
  // One server for the suite: starting one costs about a second.
  static void SetUpTestSuite() { server_ = testing::start_shared<PostgresServer>(error_); }
  static void TearDownTestSuite() { server_.reset(); }
  // A server that did not start fails every test (see support/shared_server.hpp).
  void SetUp() override { ASSERT_TRUE(server_) << error_; }
  static std::string conninfo() { return server_->conninfo(); }

  static std::unique_ptr<PostgresServer> server_;
  static std::string error_;
};

std::unique_ptr<PostgresServer> PostgresTest::server_;
std::string PostgresTest::error_;

TEST_F(PostgresTest, ParametersRoundTripAsData) {
  run_fiber([] {
    auto conn = PgConnection::connect(conninfo(), Clock::now() + 10s);
    ASSERT_TRUE(conn.ok());
    const std::string hostile = "x'); DROP TABLE pg_class; -- \"quoted\" ; \\ 'again'";
    auto r = conn.query(
        "SELECT $1::text AS greeting, $2::int + 1 AS answer, $3::text IS NULL, "
        "$4::text AS hostile, $3::text AS nothing, $5::text AS unicode",
        {"hello", "41", std::nullopt, hostile, "h\xc3\xa9llo \xe2\x9c\x93"});
    ASSERT_EQ(r.rows(), 1u);
    ASSERT_EQ(r.columns(), 6u);
    EXPECT_EQ(r.column_name(0), "greeting");
    EXPECT_EQ(r.column_index("answer"), 1u);
    EXPECT_EQ(text(r, 0, 0), "hello");
    EXPECT_EQ(text(r, 0, 1), "42");
    EXPECT_EQ(text(r, 0, 2), "t");
    EXPECT_EQ(text(r, 0, 3), hostile);
    EXPECT_TRUE(r.is_null(0, 4));
    EXPECT_FALSE(r.get(0, 4).has_value());
    EXPECT_EQ(text(r, 0, 5), "h\xc3\xa9llo \xe2\x9c\x93");
    EXPECT_THROW((void)r.get(1, 0), std::out_of_range);
    EXPECT_THROW((void)r.column_name(6), std::out_of_range);
    // The hostile value stayed a value.
    auto tables = conn.query("SELECT count(*) FROM pg_class WHERE relname = $1", {"pg_class"});
    EXPECT_EQ(text(tables, 0, 0), "1");
  });
}

TEST_F(PostgresTest, HostNamesAndUris) {
  run_fiber([] {
    const std::string port = std::to_string(server_->port());
    auto by_name =
        PgConnection::connect("host=localhost port=" + port + " user=postgres", Clock::now() + 10s);
    EXPECT_EQ(text(by_name.query("SELECT 1"), 0, 0), "1");
    auto by_uri = PgConnection::connect("postgresql://postgres@127.0.0.1:" + port + "/postgres");
    EXPECT_EQ(text(by_uri.query("SELECT current_database()"), 0, 0), "postgres");
    EXPECT_THROW(PgConnection::connect("host=no-such-host.invalid port=" + port), Unavailable);
  });
}

TEST_F(PostgresTest, CreateInsertSelectUpdate) {
  run_fiber([] {
    PgPool pool(conninfo(), 2);
    pool.query("DROP TABLE IF EXISTS items");
    auto created = pool.query("CREATE TABLE items (id serial PRIMARY KEY, name text, qty int)");
    EXPECT_EQ(created.command_status(), "CREATE TABLE");
    const std::string bobby = "Robert'); DROP TABLE items; --";
    for (auto& [name, qty] : std::vector<std::pair<std::string, std::optional<std::string>>>{
             {"apple", "3"}, {"pear", std::nullopt}, {bobby, "7"}}) {
      auto ins =
          pool.query("INSERT INTO items (name, qty) VALUES ($1, $2) RETURNING id", {name, qty});
      EXPECT_EQ(ins.affected_rows(), 1u);
      EXPECT_EQ(ins.rows(), 1u);
    }
    auto rows = pool.query("SELECT name, qty FROM items ORDER BY id");
    ASSERT_EQ(rows.rows(), 3u);
    EXPECT_EQ(text(rows, 0, 0), "apple");
    EXPECT_EQ(text(rows, 0, 1), "3");
    EXPECT_TRUE(rows.is_null(1, 1));
    EXPECT_EQ(text(rows, 2, 0), bobby);
    EXPECT_EQ(rows.affected_rows(), 3u);
    auto upd = pool.query("UPDATE items SET qty = coalesce(qty, 0) + $1::int", {"10"});
    EXPECT_EQ(upd.affected_rows(), 3u);
    auto sum = pool.query("SELECT sum(qty) FROM items");
    EXPECT_EQ(text(sum, 0, 0), "40");
    pool.query("DROP TABLE items");
  });
}

TEST_F(PostgresTest, ServerErrorsCarrySqlstateAndThePoolKeepsServing) {
  run_fiber([] {
    PgPool pool(conninfo(), 1);
    try {
      pool.query("SELEC 1");
      ADD_FAILURE() << "no error for bad syntax";
    } catch (const PgError& e) {
      EXPECT_EQ(e.sqlstate, "42601");
      EXPECT_NE(std::string(e.what()).find("syntax"), std::string::npos) << e.what();
    }
    try {
      pool.query("SELECT * FROM no_such_table");
      ADD_FAILURE() << "no error for a missing table";
    } catch (const PgError& e) {
      EXPECT_EQ(e.sqlstate, "42P01");
    }
    pool.query("DROP TABLE IF EXISTS uniq");
    pool.query("CREATE TABLE uniq (k text PRIMARY KEY)");
    pool.query("INSERT INTO uniq VALUES ($1)", {"a"});
    try {
      pool.query("INSERT INTO uniq VALUES ($1)", {"a"});
      ADD_FAILURE() << "no error for a duplicate key";
    } catch (const PgError& e) {
      EXPECT_EQ(e.sqlstate, "23505");
    }
    // Same connection throughout: errors do not cost the connection.
    EXPECT_EQ(pool.open(), 1u);
    EXPECT_EQ(text(pool.query("SELECT count(*) FROM uniq"), 0, 0), "1");
    pool.query("DROP TABLE uniq");
    EXPECT_EQ(pool.open(), 1u);
  });
}

TEST_F(PostgresTest, ScriptsRunSeveralStatements) {
  run_fiber([] {
    auto conn = PgConnection::connect(conninfo());
    auto r = conn.execute_script(
        "DROP TABLE IF EXISTS script_t; CREATE TABLE script_t (n int); "
        "INSERT INTO script_t VALUES (1), (2); SELECT sum(n) FROM script_t");
    EXPECT_EQ(text(r, 0, 0), "3");
    EXPECT_THROW(conn.execute_script("SELECT 1; SELEC 2"), PgError);
    EXPECT_TRUE(conn.ok());
    conn.execute_script("DROP TABLE script_t");
  });
}

TEST_F(PostgresTest, TransactionsThroughALease) {
  run_fiber([] {
    PgPool pool(conninfo(), 2);
    pool.query("DROP TABLE IF EXISTS ledger");
    pool.query("CREATE TABLE ledger (n int)");
    {
      auto lease = pool.acquire();
      lease->query("BEGIN");
      lease->query("INSERT INTO ledger VALUES (1)");
      EXPECT_TRUE(lease->in_transaction());
      lease->query("ROLLBACK");
      lease->query("BEGIN");
      lease->query("INSERT INTO ledger VALUES (2)");
      lease->query("COMMIT");
    }
    EXPECT_EQ(pool.idle(), pool.open());
    std::size_t open_before = pool.open();
    {
      // Returned mid-transaction: closed (rolling back), not reused.
      auto lease = pool.acquire();
      lease->query("BEGIN");
      lease->query("INSERT INTO ledger VALUES (3)");
    }
    EXPECT_EQ(pool.open(), open_before - 1);
    auto r = pool.query("SELECT coalesce(sum(n), 0) FROM ledger");
    EXPECT_EQ(text(r, 0, 0), "2");
    pool.query("DROP TABLE ledger");
  });
}

TEST_F(PostgresTest, ServerDownIsUnavailableQuickly) {
  run_fiber([] {
    int port = testing::free_tcp_port();
    std::string info = "host=127.0.0.1 port=" + std::to_string(port) + " user=postgres";
    auto start = Clock::now();
    EXPECT_THROW(PgConnection::connect(info), Unavailable);
    PgPool pool(info, 2);
    EXPECT_THROW(pool.query("SELECT 1"), Unavailable);
    EXPECT_THROW(pool.query("SELECT 1"), Unavailable);
    EXPECT_EQ(pool.open(), 0u);
    EXPECT_LT(seconds_since(start), 2.0);
    EXPECT_THROW(PgConnection::connect("host=127.0.0.1 port=notaport junk"), std::invalid_argument);
  });
}

TEST_F(PostgresTest, ConcurrentQueriesDoNotBlockTheShard) {
  run_fiber([] {
    PgPool pool(conninfo(), 10);
    bool done = false;
    int ticks = 0;
    auto ticker = spawn([&] {
      while (!done) {
        this_fiber::sleep_for(10ms);
        ++ticks;
      }
    });
    auto start = Clock::now();
    std::vector<Joinable<std::string>> sleepers;
    for (int i = 0; i < 10; ++i)
      sleepers.push_back(spawn([&pool, i] {
        auto r = pool.query("SELECT $1::int, pg_sleep(1)", {std::to_string(i)});
        return std::string(*r.get(0, 0));
      }));
    for (int i = 0; i < 10; ++i) EXPECT_EQ(sleepers[i].join(), std::to_string(i));
    double elapsed = seconds_since(start);
    done = true;
    ticker.join();
    EXPECT_GE(elapsed, 0.9);
    EXPECT_LT(elapsed, 5.0) << "the sleeps ran one after another";
    // ~100 ticks if the shard was never blocked; a blocked shard makes ~1.
    EXPECT_GE(ticks, 20) << "the shard was blocked while queries waited";
    EXPECT_EQ(pool.open(), 10u);
  });
}

TEST_F(PostgresTest, FibersQueueForASmallPool) {
  run_fiber([] {
    PgPool pool(conninfo(), 4);
    std::size_t most_open = 0;
    std::vector<Joinable<std::string>> fibers;
    for (int i = 0; i < 50; ++i)
      fibers.push_back(spawn([&pool, &most_open, i] {
        auto r = pool.query("SELECT $1::int * 2, pg_sleep(0.01)", {std::to_string(i)});
        most_open = std::max(most_open, pool.open());
        return std::string(*r.get(0, 0));
      }));
    for (int i = 0; i < 50; ++i) EXPECT_EQ(fibers[i].join(), std::to_string(i * 2));
    EXPECT_LE(most_open, 4u);
    EXPECT_EQ(pool.open(), 4u);
    EXPECT_EQ(pool.idle(), 4u);
  });
}

TEST_F(PostgresTest, PoolWaitIsBoundedByTheDeadline) {
  run_fiber([] {
    PgPool pool(conninfo(), 1);
    auto held = pool.acquire();
    auto start = Clock::now();
    EXPECT_THROW(pool.query("SELECT 1", {}, Clock::now() + 200ms), Timeout);
    EXPECT_LT(seconds_since(start), 2.0);
    EXPECT_TRUE(held->ok());
  });
}

// The statement left running must be cancelled on the server.
void expect_no_sleeper(PgPool& pool) {
  auto until = Clock::now() + 2s;  // the statement itself would run 5 s
  std::string running;
  do {
    this_fiber::sleep_for(50ms);
    running = text(pool.query("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                              "AND pid <> pg_backend_pid() AND query LIKE '%pg_sleep(5)%'"),
                   0, 0);
  } while (running != "0" && Clock::now() < until);
  EXPECT_EQ(running, "0") << "the timed-out statement still runs on the server";
}

TEST_F(PostgresTest, QueryDeadlineTimesOutAndThePoolRecovers) {
  run_fiber([] {
    PgPool pool(conninfo(), 2);
    auto start = Clock::now();
    EXPECT_THROW(pool.query("SELECT pg_sleep(5)", {}, Clock::now() + 300ms), Timeout);
    double elapsed = seconds_since(start);
    EXPECT_GE(elapsed, 0.25);
    EXPECT_LT(elapsed, 3.0);
    EXPECT_EQ(pool.open(), 0u);  // the timed-out connection was dropped
    EXPECT_EQ(text(pool.query("SELECT 7"), 0, 0), "7");
    expect_no_sleeper(pool);
  });
}

TEST_F(PostgresTest, RequestDeadlineEndsTheQuery) {
  run_fiber([] {
    PgPool pool(conninfo(), 2);
    auto start = Clock::now();
    auto child = spawn([&pool] {
      auto* hub = FiberHub::current();
      hub->set_deadline(hub->self(), Clock::now() + 300ms);
      pool.query("SELECT pg_sleep(5)");
    });
    EXPECT_THROW(child.join(), DeadlineExceeded);
    EXPECT_LT(seconds_since(start), 3.0);
    EXPECT_EQ(text(pool.query("SELECT 8"), 0, 0), "8");
    expect_no_sleeper(pool);
  });
}

TEST_F(PostgresTest, ConnectionIsForOneFiberAtATime) {
  run_fiber([] {
    auto conn = PgConnection::connect(conninfo());
    auto first = spawn([&conn] { conn.query("SELECT pg_sleep(0.2)"); });
    this_fiber::sleep_for(50ms);
    EXPECT_THROW(conn.query("SELECT 1"), std::logic_error);
    first.join();
    EXPECT_TRUE(conn.ok());
  });
}

TEST(PostgresOutsideFiber, Refused) {
  EXPECT_THROW(PgConnection::connect("host=127.0.0.1 port=1"), std::logic_error);
}

// Its own server, since it stops it.
TEST(PostgresServerStops, MidQueryAndBetweenQueries) {
  PostgresServer server;
  run_fiber([&server] {
    auto conn = PgConnection::connect(server.conninfo(), Clock::now() + 10s);
    PgPool pool(server.conninfo(), 2);
    EXPECT_EQ(text(pool.query("SELECT 1"), 0, 0), "1");
    ASSERT_EQ(pool.idle(), 1u);

    auto start = Clock::now();
    auto sleeper = spawn([&conn] { conn.query("SELECT pg_sleep(30)"); });
    this_fiber::sleep_for(300ms);
    offload([&server] { server.stop(); });
    EXPECT_THROW(sleeper.join(), Unavailable);
    EXPECT_LT(seconds_since(start), 10.0);
    EXPECT_FALSE(conn.ok());
    EXPECT_THROW(conn.query("SELECT 1"), Unavailable);

    // The pool's idle connection is stale: dropped, and no new one can be made.
    EXPECT_THROW(pool.query("SELECT 1"), Unavailable);
    EXPECT_EQ(pool.open(), 0u);

    // Back up: the pool serves again with a fresh connection. (Started from
    // this thread: a child started from an offload thread would be tied to it.)
    server.start();
    EXPECT_EQ(text(pool.query("SELECT 2"), 0, 0), "2");
  });
  server.stop();
}

}  // namespace
}  // namespace brubeck
