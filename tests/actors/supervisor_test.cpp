#include "brubeck/actors/supervisor.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/send.hpp>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>
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

TEST(Supervisor, RestartsAShardThatDiesAndGivesUpOnOneThatKeepsDying) {
  auto cfg = small_config();
  caf::actor_system system{cfg};
  zmq::context_t zmq{1};
  std::mutex m;
  std::string what;
  std::atomic<int> failures{0};
  std::vector<std::size_t> restarted;
  {
    Supervisor sup(
        system, zmq,
        [&](const std::string& w) {
          std::lock_guard lock(m);
          what = w;
          ++failures;
        },
        [&](std::size_t index, const caf::actor& shard) {
          EXPECT_TRUE(shard);
          restarted.push_back(index);
        },
        /*max_restarts=*/2);
    sup.start_shards(2, options(), {});
    auto survivor = sup.shard_handles()[0];
    // Each kill is noticed (asynchronously) and repaired by restart_failed().
    for (int kill = 1; kill <= 3; ++kill) {
      auto victim = sup.shard_handles()[1];
      caf::anon_send_exit(victim, caf::exit_reason::kill);
      for (int i = 0; i < 500 && sup.restart_failed() == 0 && failures.load() == 0; ++i)
        std::this_thread::sleep_for(10ms);
      if (kill <= 2) {
        EXPECT_NE(sup.shard_handles()[1], victim) << "kill " << kill << ": not replaced";
      }
    }
    EXPECT_EQ(restarted, (std::vector<std::size_t>{1, 1}));
    EXPECT_EQ(sup.restarts(), 2u);
    EXPECT_EQ(failures.load(), 1) << "the third death within a minute is given up on";
    {
      std::lock_guard lock(m);
      EXPECT_NE(what.find("shard 1"), std::string::npos) << what;
    }
    EXPECT_EQ(sup.shard_handles()[0], survivor) << "the other shard never noticed";
    sup.drain(100ms);  // must return: the dead shard's thread has ended too
  }
}

}  // namespace
}  // namespace brubeck
