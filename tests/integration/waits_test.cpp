// Issue #4 through a real Mongrel2: the demo's routes that wait on SQLite,
// Redis, PostgreSQL, an actor, child fibers and deadlines, with real Redis
// and PostgreSQL servers this test starts and stops.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"
#include "support/postgres_server.hpp"
#include "support/redis_server.hpp"
#include "support/shared_server.hpp"

namespace brubeck::testing {
namespace {

using Clock = std::chrono::steady_clock;

class Waits : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    redis_ = start_shared<RedisServer>(redis_error_);
    postgres_ = start_shared<PostgresServer>(postgres_error_);
  }
  static void TearDownTestSuite() {
    redis_.reset();
    postgres_.reset();
  }
  // A server that did not start fails every test (see support/shared_server.hpp).
  void SetUp() override {
    ASSERT_TRUE(redis_) << redis_error_;
    ASSERT_TRUE(postgres_) << postgres_error_;
  }

  void start_demo(int shards) {
    m2_ = std::make_unique<Mongrel2Server>();
    m2_->start();
    demo_.start(binary_path("examples/brubeck_demo"),
                {"--send-spec", m2_->send_spec(), "--recv-spec", m2_->recv_spec(), "--shards",
                 std::to_string(shards), "--no-pin", "--grace-ms", "3000"},
                demo_options({{"BRUBECK_DEMO_REDIS", "127.0.0.1:" + std::to_string(redis_->port())},
                              {"BRUBECK_DEMO_PG", postgres_->conninfo()},
                              {"BRUBECK_DEMO_PG_POOL", "60"},
                              {"BRUBECK_DEMO_SQLITE", dir_.path() + "/notes.db"}}));
    wait_for_handler(m2_->http_port(), "/", &demo_);
  }

  void TearDown() override {
    if (demo_.running()) {
      EXPECT_EQ(demo_.stop(SIGTERM), 0) << demo_.output();
    }
    if (HasFailure()) std::cerr << "--- demo output:\n" << demo_.output() << "\n";
  }

  int port() const { return m2_->http_port(); }

  static std::unique_ptr<RedisServer> redis_;
  static std::unique_ptr<PostgresServer> postgres_;
  static std::string redis_error_;
  static std::string postgres_error_;
  TempDir dir_{"brubeck-waits"};
  std::unique_ptr<Mongrel2Server> m2_;
  ChildProcess demo_;
};

std::unique_ptr<RedisServer> Waits::redis_;
std::unique_ptr<PostgresServer> Waits::postgres_;
std::string Waits::redis_error_;
std::string Waits::postgres_error_;

TEST_F(Waits, SqliteNotesAddAndList) {
  start_demo(2);
  HttpConnection c(port());
  auto added =
      c.request("POST", "/sqlite/notes", {{"Content-Type", "application/x-www-form-urlencoded"}},
                "text=x%27%29%3B+DROP+TABLE+notes%3B+--");
  EXPECT_EQ(added.status, 201) << added.body;
  EXPECT_EQ(c.request("POST", "/sqlite/notes", {}, "").status, 400);
  auto list = c.request("GET", "/sqlite/notes");
  EXPECT_EQ(list.status, 200);
  EXPECT_NE(list.body.find(R"("text":"x'); DROP TABLE notes; --")"), std::string::npos)
      << list.body;
}

TEST_F(Waits, RedisCounterAndActorCounterAcrossShards) {
  start_demo(2);
  std::set<std::string> redis_values, actor_values;
  for (int i = 0; i < 20; ++i) {
    // A fresh connection each time: connections hash to both shards.
    redis_values.insert(http_get(port(), "/redis/incr?key=waits").body);
    actor_values.insert(http_get(port(), "/counter").body);
  }
  EXPECT_EQ(redis_values.size(), 20u);
  EXPECT_TRUE(redis_values.count("20")) << "Redis counted every request once";
  EXPECT_EQ(actor_values.size(), 20u);
  EXPECT_TRUE(actor_values.count("1") && actor_values.count("20"))
      << "one actor behind both shards counts 1..20";
}

TEST_F(Waits, FanoutRunsChildrenConcurrently) {
  start_demo(1);
  auto start = Clock::now();
  auto r = http_get(port(), "/fanout");
  auto took = Clock::now() - start;
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find(R"("sum":6)"), std::string::npos) << r.body;
  EXPECT_LT(took, std::chrono::milliseconds(850)) << "three 300 ms waits ran one after another";
}

TEST_F(Waits, DeadlineTurnsASlowHandlerInto504) {
  start_demo(1);
  EXPECT_EQ(http_get(port(), "/slow?ms=10").status, 200);
  auto start = Clock::now();
  auto r = http_get(port(), "/slow?ms=8000");
  EXPECT_EQ(r.status, 504);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(http_get(port(), "/brubeck").status, 200) << "the shard carries on";
}

// While 100 requests wait on PostgreSQL on the only shard, that shard still
// answers /brubeck: count the answers that arrive while queries are running.
TEST_F(Waits, SlowPostgresDoesNotBlockTheShard) {
  start_demo(1);
  ASSERT_EQ(http_get(port(), "/pg/sleep?ms=1").status, 200);
  constexpr int kSlow = 100;
  std::atomic<int> slow_ok{0}, slow_done{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < kSlow; ++i)
    clients.emplace_back([&] {
      try {
        if (http_get(port(), "/pg/sleep?ms=3000", std::chrono::seconds(30)).status == 200)
          ++slow_ok;
      } catch (const std::exception&) {
      }
      ++slow_done;
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the queries are running
  int fast_while_waiting = 0;
  for (int i = 0; i < 20 && slow_done.load() == 0; ++i)
    if (http_get(port(), "/brubeck?name=fast", std::chrono::seconds(2)).body ==
            "Take five, fast!" &&
        slow_done.load() == 0)
      ++fast_while_waiting;
  for (auto& t : clients) t.join();
  EXPECT_EQ(slow_ok.load(), kSlow);
  EXPECT_GE(fast_while_waiting, 10) << "the shard was blocked by the PostgreSQL waits";
}

TEST_F(Waits, DownServersAre503AndRecover) {
  start_demo(1);
  ASSERT_EQ(http_get(port(), "/redis/incr?key=down").status, 200);
  redis_->stop(SIGKILL);
  EXPECT_EQ(http_get(port(), "/redis/incr?key=down").status, 503);
  redis_->start();
  int status = 0;
  for (int i = 0; i < 20 && status != 200; ++i) {
    status = http_get(port(), "/redis/incr?key=down").status;
    if (status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(status, 200) << "the shard reconnects to Redis by itself";

  postgres_->stop();
  EXPECT_EQ(http_get(port(), "/pg/sleep?ms=1").status, 503);
  postgres_->start();
  status = 0;
  for (int i = 0; i < 50 && status != 200; ++i) {
    status = http_get(port(), "/pg/sleep?ms=1").status;
    if (status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(status, 200) << "the pool reconnects to PostgreSQL by itself";
}

}  // namespace
}  // namespace brubeck::testing
