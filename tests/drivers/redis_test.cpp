// The Redis driver against a real redis-server, from fibers of a real reactor.
#include "brubeck/drivers/redis.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "brubeck/pipeline/spawn.hpp"
#include "support/fiber_runner.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"
#include "support/shared_server.hpp"

namespace brubeck {
namespace {

using namespace std::chrono_literals;
using testing::RedisServer;
using testing::run_fiber;

constexpr const char* kHost = "127.0.0.1";

// One server for the tests that do not stop it; each test uses its own keys.
class RedisTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = testing::start_shared<RedisServer>(error_); }
  static void TearDownTestSuite() { server_.reset(); }
  // A server that did not start fails every test (see support/shared_server.hpp).
  void SetUp() override { ASSERT_TRUE(server_) << error_; }
  static std::uint16_t port() { return static_cast<std::uint16_t>(server_->port()); }

  static std::unique_ptr<RedisServer> server_;
  static std::string error_;
};

std::unique_ptr<RedisServer> RedisTest::server_;
std::string RedisTest::error_;

TEST_F(RedisTest, IncrGetSetRoundTrip) {
  run_fiber([] {
    auto redis = RedisClient::connect(kHost, port());
    EXPECT_TRUE(redis->connected());
    EXPECT_EQ(redis->get("rt:missing"), std::nullopt);
    redis->set("rt:name", "brubeck");
    EXPECT_EQ(redis->get("rt:name"), "brubeck");
    EXPECT_EQ(redis->incr("rt:counter"), 1);
    EXPECT_EQ(redis->incr("rt:counter"), 2);
    EXPECT_EQ(redis->get("rt:counter"), "2");

    auto pong = redis->command({"PING"});
    EXPECT_TRUE(pong.is_status());
    EXPECT_EQ(pong.str, "PONG");
    redis->command({"RPUSH", "rt:list", "a", "b", "c"});
    auto list = redis->command({"LRANGE", "rt:list", "0", "-1"});
    ASSERT_TRUE(list.is_array());
    ASSERT_EQ(list.elements.size(), 3u);
    EXPECT_EQ(list.elements[2].str, "c");
    auto mget = redis->command({"MGET", "rt:name", "rt:missing"});
    ASSERT_EQ(mget.elements.size(), 2u);
    EXPECT_TRUE(mget.elements[1].is_nil());
  });
}

TEST_F(RedisTest, ValuesAndKeysAreBinarySafe) {
  run_fiber([] {
    auto redis = RedisClient::connect(kHost, port());
    const std::string key("bin:\0key\r\n", 10);
    std::string value("a\0b\r\nc\0", 7);
    value += std::string(70000, '\xff');  // larger than one socket read
    redis->set(key, value);
    EXPECT_EQ(redis->get(key), value);
    EXPECT_EQ(redis->get(std::string("bin:")), std::nullopt);  // the key was not cut at the NUL
    auto len = redis->command({"STRLEN", key});
    EXPECT_EQ(len.integer, static_cast<std::int64_t>(value.size()));
  });
}

TEST_F(RedisTest, ManyFibersPipelineOnOneConnection) {
  run_fiber([] {
    auto redis = RedisClient::for_this_shard(kHost, port());
    constexpr int kFibers = 200;
    std::vector<Joinable<std::int64_t>> children;
    children.reserve(kFibers);
    for (int i = 0; i < kFibers; ++i) {
      children.push_back(spawn([redis] { return redis->incr("many:counter"); }));
    }
    std::set<std::int64_t> seen;
    for (auto& child : children) seen.insert(child.join());
    EXPECT_EQ(seen.size(), static_cast<std::size_t>(kFibers));
    EXPECT_EQ(*seen.begin(), 1);
    EXPECT_EQ(*seen.rbegin(), kFibers);
    EXPECT_EQ(redis->get("many:counter"), std::to_string(kFibers));
    // The same shard gets the same connection.
    EXPECT_EQ(RedisClient::for_this_shard(kHost, port()), redis);
  });
}

TEST_F(RedisTest, ErrorReplyThrowsAndConnectionKeepsWorking) {
  run_fiber([] {
    auto redis = RedisClient::connect(kHost, port());
    redis->set("err:text", "not a number");
    try {
      redis->incr("err:text");
      ADD_FAILURE() << "INCR on a string should fail";
    } catch (const RedisError& e) {
      EXPECT_NE(std::string(e.what()).find("not an integer"), std::string::npos) << e.what();
    }
    EXPECT_THROW(redis->command({"NOSUCHCOMMAND"}), RedisError);
    EXPECT_TRUE(redis->connected());
    EXPECT_EQ(redis->get("err:text"), "not a number");
    EXPECT_EQ(redis->incr("err:counter"), 1);
    // Commands that would turn the connection into a stream are refused.
    EXPECT_THROW(redis->command({"subscribe", "x"}), std::invalid_argument);
    EXPECT_THROW(redis->command({}), std::invalid_argument);
    EXPECT_EQ(redis->incr("err:counter"), 2);
  });
}

TEST(RedisDown, ConnectToClosedPortIsUnavailable) {
  auto port = static_cast<std::uint16_t>(testing::free_tcp_port());
  run_fiber([port] {
    auto start = Clock::now();
    try {
      RedisClient::connect(kHost, port);
      ADD_FAILURE() << "connected to a closed port";
    } catch (const Unavailable& e) {
      EXPECT_NE(std::string(e.what()).find("refused"), std::string::npos) << e.what();
    }
    EXPECT_THROW(RedisClient::for_this_shard(kHost, port, Clock::now() + 2s), Unavailable);
    EXPECT_THROW(RedisSubscription::open(kHost, port, {"c"}), Unavailable);
    EXPECT_LT(Clock::now() - start, 2s);
  });
}

// A listener whose accept queue is full: the kernel drops further SYNs, so a
// connect neither succeeds nor fails until it gives up.
TEST(RedisDown, ConnectThatNeverCompletesTimesOut) {
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ASSERT_EQ(::listen(listener, 0), 0);
  auto port = ntohs(addr.sin_port);
  std::vector<int> fillers;
  for (int i = 0; i < 4; ++i) {
    fillers.push_back(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    ::connect(fillers.back(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  }
  run_fiber([port] {
    auto start = Clock::now();
    EXPECT_THROW(RedisClient::connect(kHost, port, start + 200ms), Timeout);
    EXPECT_LT(Clock::now() - start, 1500ms);
  });
  for (int fd : fillers) ::close(fd);
  ::close(listener);
}

TEST(RedisRestart, ServerKilledMidSessionThenShardReconnects) {
  RedisServer server;
  auto port = static_cast<std::uint16_t>(server.port());
  run_fiber([&server, port] {
    auto redis = RedisClient::for_this_shard(kHost, port);
    redis->set("restart:k", "v");
    auto blocker = RedisClient::connect(kHost, port);
    auto sub = RedisSubscription::open(kHost, port, {"restart:chan"});

    // A command in flight when the server dies fails; it does not hang.
    auto in_flight = spawn([blocker] { return blocker->command({"BLPOP", "restart:none", "30"}); });
    this_fiber::sleep_for(50ms);
    auto killed_at = Clock::now();
    server.stop(SIGKILL);
    try {
      in_flight.join();
      ADD_FAILURE() << "BLPOP survived the server";
    } catch (const Unavailable& e) {
      EXPECT_NE(std::string(e.what()).find("lost"), std::string::npos) << e.what();
    }
    EXPECT_LT(Clock::now() - killed_at, 5s);
    EXPECT_FALSE(blocker->connected());
    // The subscription ends instead of waiting forever.
    EXPECT_EQ(sub.next(Clock::now() + 5s), std::nullopt);
    EXPECT_FALSE(sub.connected());

    // The next command on the broken shared connection fails at once.
    EXPECT_THROW(redis->get("restart:k", Clock::now() + 5s), Unavailable);
    EXPECT_FALSE(redis->connected());
    EXPECT_THROW(RedisClient::for_this_shard(kHost, port), Unavailable);

    server.start();
    auto again = RedisClient::for_this_shard(kHost, port, Clock::now() + 5s);
    EXPECT_NE(again, redis);
    EXPECT_TRUE(again->connected());
    EXPECT_EQ(again->get("restart:k"), std::nullopt);  // no persistence: a fresh server
    EXPECT_EQ(again->incr("restart:n"), 1);
    EXPECT_EQ(RedisClient::for_this_shard(kHost, port), again);
    EXPECT_THROW(redis->incr("restart:n"), Unavailable);  // the old handle stays broken
  });
  server.stop();
}

TEST_F(RedisTest, DeadlineShorterThanSlowCommandTimesOutWhileTheShardRuns) {
  run_fiber([] {
    auto slow = RedisClient::connect(kHost, port());
    auto other = RedisClient::connect(kHost, port());
    int ticks = 0;
    bool stop = false;
    auto ticker = spawn([&] {
      while (!stop) {
        this_fiber::sleep_for(10ms);
        ++ticks;
      }
    });
    auto worker = spawn([&] {
      std::int64_t last = 0;
      for (int i = 0; i < 5; ++i) {
        this_fiber::sleep_for(20ms);
        last = other->incr("deadline:progress");
      }
      return last;
    });

    auto start = Clock::now();
    EXPECT_THROW(slow->command({"BLPOP", "deadline:none", "2"}, start + 200ms), Timeout);
    auto waited = Clock::now() - start;
    EXPECT_GE(waited, 190ms);
    EXPECT_LT(waited, 1500ms);
    EXPECT_EQ(worker.join(), 5);
    stop = true;
    ticker.join();
    EXPECT_GE(ticks, 5) << "the shard loop did not run while a command waited";

    // The next command goes out on a fresh connection, not behind the BLPOP.
    auto pong = slow->command({"PING"}, Clock::now() + 5s);
    EXPECT_EQ(pong.str, "PONG");
    EXPECT_TRUE(slow->connected());

    // A client dropped with a command still in flight frees it safely.
    auto doomed = RedisClient::connect(kHost, port());
    EXPECT_THROW(doomed->command({"BLPOP", "deadline:none", "2"}, Clock::now() + 50ms), Timeout);
    doomed.reset();
    EXPECT_EQ(other->incr("deadline:progress"), 6);
  });
}

// The connections the server holds whose last command was `command`
// (CLIENT LIST's cmd= field), asked over `redis`.
std::size_t clients_running(RedisClient& redis, const std::string& command) {
  auto list = redis.command({"CLIENT", "LIST", "TYPE", "normal"}, Clock::now() + 5s).str;
  std::size_t n = 0;
  for (std::size_t at = 0; (at = list.find(" cmd=" + command + " ", at)) != std::string::npos; ++at)
    ++n;
  return n;
}

// A command past its deadline gives up its connection: the commands pipelined
// behind it fail at once instead of waiting for its reply, and the next ones
// go out on a fresh connection.
TEST_F(RedisTest, TimedOutCommandDoesNotHoldUpTheCommandsBehindIt) {
  run_fiber([] {
    auto redis = RedisClient::for_this_shard(kHost, port());
    auto observer = RedisClient::connect(kHost, port());
    redis->set("behind:k", "v");
    // Sent once the BLPOP is on the wire, so it queues behind it.
    auto behind = spawn([redis] {
      this_fiber::sleep_for(30ms);
      auto sent = Clock::now();
      bool failed_fast = false;
      try {
        redis->get("behind:k", sent + 10s);
      } catch (const Unavailable& e) {
        failed_fast = std::string(e.what()).find("timed out") != std::string::npos;
      }
      return std::make_pair(failed_fast, Clock::now() - sent);
    });

    auto start = Clock::now();
    EXPECT_THROW(redis->command({"BLPOP", "behind:none", "5"}, start + 100ms), Timeout);
    EXPECT_LT(Clock::now() - start, 1s);
    auto [failed_fast, behind_waited] = behind.join();
    EXPECT_TRUE(failed_fast) << "the command behind the timed-out one should fail, saying why";
    EXPECT_LT(behind_waited, 1s) << "held up behind a BLPOP with 5 s to go";

    // The same shard's next commands answer on a fresh connection, at once.
    auto after = Clock::now();
    auto again = RedisClient::for_this_shard(kHost, port());
    EXPECT_EQ(again->get("behind:k", after + 10s), "v");
    EXPECT_EQ(again->command({"PING"}, after + 10s).str, "PONG");
    EXPECT_LT(Clock::now() - after, 1s);
    EXPECT_TRUE(again->connected());
    EXPECT_EQ(again->incr("behind:n", Clock::now() + 5s), 1);

    // The server lets go of the blocked connection rather than holding it.
    auto until = Clock::now() + 3s;
    while (clients_running(*observer, "blpop") != 0 && Clock::now() < until)
      this_fiber::sleep_for(10ms);
    EXPECT_EQ(clients_running(*observer, "blpop"), 0u);

    // The request's own deadline gives the connection up in the same way.
    auto child = spawn([redis = again] {
      auto* hub = FiberHub::current();
      hub->set_deadline(hub->self(), Clock::now() + 100ms);
      redis->command({"BLPOP", "behind:none", "5"});
    });
    EXPECT_THROW(child.join(), DeadlineExceeded);
    auto third = Clock::now();
    EXPECT_EQ(again->incr("behind:n", third + 10s), 2);
    EXPECT_LT(Clock::now() - third, 1s);
  });
}

TEST_F(RedisTest, ClientDroppedOnAnotherThreadIsFreedOnItsShard) {
  run_fiber([] {
    auto redis = RedisClient::connect(kHost, port());
    auto waiting = RedisClient::connect(kHost, port());
    EXPECT_THROW(waiting->command({"BLPOP", "drop:none", "2"}, Clock::now() + 20ms), Timeout);
    std::thread([r = std::move(redis), w = std::move(waiting)]() mutable {
      r.reset();
      w.reset();
    }).join();
    this_fiber::sleep_for(20ms);  // the shard runs the hand-off
    auto fresh = RedisClient::connect(kHost, port());
    EXPECT_EQ(fresh->incr("drop:n"), 1);
  });
}

TEST_F(RedisTest, FiberDeadlineAppliesToCommands) {
  run_fiber([] {
    auto slow = RedisClient::connect(kHost, port());
    auto child = spawn([slow] {
      auto* hub = FiberHub::current();
      hub->set_deadline(hub->self(), Clock::now() + 100ms);
      slow->command({"BLPOP", "fiberdeadline:none", "2"});
    });
    auto start = Clock::now();
    EXPECT_THROW(child.join(), DeadlineExceeded);
    EXPECT_LT(Clock::now() - start, 1500ms);
  });
}

TEST_F(RedisTest, SubscriptionReceivesPublishedMessages) {
  run_fiber([] {
    auto sub = RedisSubscription::open(kHost, port(), {"ps:news", "ps:other"});
    EXPECT_TRUE(sub.connected());
    auto pub = RedisClient::connect(kHost, port());
    EXPECT_EQ(pub->publish("ps:news", "hello"), 1);
    const std::string binary("x\0y\r\nz", 6);
    EXPECT_EQ(pub->publish("ps:other", binary), 1);
    EXPECT_EQ(pub->publish("ps:nobody", "lost"), 0);

    auto first = sub.next(Clock::now() + 5s);
    ASSERT_TRUE(first.has_value());
    EXPECT_EQ(first->channel, "ps:news");
    EXPECT_EQ(first->payload, "hello");
    auto second = sub.next(Clock::now() + 5s);
    ASSERT_TRUE(second.has_value());
    EXPECT_EQ(second->channel, "ps:other");
    EXPECT_EQ(second->payload, binary);
    EXPECT_THROW(sub.next(Clock::now() + 100ms), Timeout);

    // A waiting subscriber is woken by a publish from another fiber.
    auto publisher = spawn([pub] {
      this_fiber::sleep_for(50ms);
      return pub->publish("ps:news", "later");
    });
    auto third = sub.next(Clock::now() + 5s);
    ASSERT_TRUE(third.has_value());
    EXPECT_EQ(third->payload, "later");
    EXPECT_EQ(publisher.join(), 1);

    // Moving a subscription keeps it working.
    RedisSubscription moved = std::move(sub);
    EXPECT_EQ(pub->publish("ps:news", "moved"), 1);
    auto fourth = moved.next(Clock::now() + 5s);
    ASSERT_TRUE(fourth.has_value());
    EXPECT_EQ(fourth->payload, "moved");
  });
}

}  // namespace
}  // namespace brubeck
