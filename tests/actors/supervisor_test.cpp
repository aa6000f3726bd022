#include "brubeck/actors/supervisor.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/send.hpp>
#include <chrono>
#include <mutex>
#include <thread>
#include <zmq.hpp>

namespace brubeck {
namespace {

using namespace std::chrono_literals;

caf::actor_system_config small_config() {
  caf::actor_system_config cfg;
  cfg.set("scheduler.policy", caf::atom("sharing"));
  cfg.set("scheduler.max-threads", std::size_t{1});
  return cfg;
}

ShardOptions options() {
  ShardOptions o;
  o.recv_specs = {};  // no subscriber to wait for
  o.pin = false;
  return o;
}

TEST(Supervisor, StartsShardsAndDrainsThemOnRequest) {
  auto cfg = small_config();
  caf::actor_system system{cfg};
  zmq::context_t zmq{1};
  std::atomic<int> failures{0};
  {
    Supervisor sup(system, zmq, [&](const std::string&) { ++failures; });
    sup.start_shards(3, options(), {});
    ASSERT_EQ(sup.shards().size(), 3u);
    for (const auto& h : sup.shard_handles()) EXPECT_TRUE(h);
    sup.drain(100ms);
    EXPECT_TRUE(sup.shards().empty());
  }
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(failures.load(), 0) << "a drain is not a failure";
}

TEST(Supervisor, ReportsAShardThatDiesAndStillDrainsTheRest) {
  auto cfg = small_config();
  caf::actor_system system{cfg};
  zmq::context_t zmq{1};
  std::mutex m;
  std::string what;
  std::atomic<int> failures{0};
  {
    Supervisor sup(system, zmq, [&](const std::string& w) {
      std::lock_guard lock(m);
      what = w;
      ++failures;
    });
    sup.start_shards(2, options(), {});
    caf::anon_send_exit(sup.shard_handles()[1], caf::exit_reason::kill);
    for (int i = 0; i < 500 && failures.load() == 0; ++i) std::this_thread::sleep_for(10ms);
    EXPECT_EQ(failures.load(), 1);
    {
      std::lock_guard lock(m);
      EXPECT_NE(what.find("shard 1"), std::string::npos) << what;
    }
    sup.drain(100ms);  // must return: the dead shard's thread has ended too
  }
}

}  // namespace
}  // namespace brubeck
