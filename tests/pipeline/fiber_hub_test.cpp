#include "brubeck/pipeline/fiber_hub.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace brubeck {
namespace {

void run_until_idle(FiberHub& hub) {
  while (hub.live() > 0) {
    hub.fire_timers();
    hub.run_ready();
  }
}

TEST(FiberHub, RunsSpawnedFibersInOrder) {
  FiberHub hub;
  std::vector<int> seen;
  for (int i = 0; i < 5; ++i) hub.spawn([&seen, i] { seen.push_back(i); });
  EXPECT_EQ(hub.live(), 5u);
  EXPECT_EQ(hub.run_ready(), 5u);
  EXPECT_EQ(hub.live(), 0u);
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(FiberHub, YieldInterleaves) {
  FiberHub hub;
  std::string trace;
  for (char c : {'a', 'b'}) {
    hub.spawn([&trace, c, &hub] {
      for (int i = 0; i < 3; ++i) {
        trace += c;
        hub.yield();
      }
    });
  }
  run_until_idle(hub);
  EXPECT_EQ(trace, "ababab");
}

TEST(FiberHub, SuspendUntilWoken) {
  FiberHub hub;
  WaitToken token;
  bool woken = false;
  bool done = false;
  hub.spawn([&] {
    token = hub.prepare_wait();
    woken = hub.suspend(token);
    done = true;
  });
  hub.run_ready();
  EXPECT_FALSE(done);
  EXPECT_EQ(hub.live(), 1u);
  EXPECT_TRUE(hub.wake(token));
  EXPECT_FALSE(hub.wake(token)) << "a second wake with the same token is stale";
  hub.run_ready();
  EXPECT_TRUE(done);
  EXPECT_TRUE(woken);
}

TEST(FiberHub, StaleTokenAfterFiberEndsIsIgnored) {
  FiberHub hub;
  WaitToken token;
  hub.spawn([&] {
    token = hub.prepare_wait();
    hub.suspend(token);
  });
  hub.run_ready();
  ASSERT_TRUE(hub.wake(token));
  hub.run_ready();
  // The record is recycled for a new fiber; the old token must not wake it.
  bool second_done = false;
  hub.spawn([&] {
    auto t = hub.prepare_wait();
    hub.suspend(t, Clock::now() + std::chrono::milliseconds(1));
    second_done = true;
  });
  hub.run_ready();
  EXPECT_FALSE(hub.wake(token));
  run_until_idle(hub);
  EXPECT_TRUE(second_done);
}

TEST(FiberHub, SleepsOrderByDeadline) {
  FiberHub hub;
  std::vector<int> order;
  auto start = Clock::now();
  for (int ms : {30, 10, 20}) {
    hub.spawn([&, ms] {
      hub.sleep_for(std::chrono::milliseconds(ms));
      order.push_back(ms);
    });
  }
  hub.run_ready();
  ASSERT_TRUE(hub.next_deadline().has_value());
  run_until_idle(hub);
  EXPECT_EQ(order, (std::vector<int>{10, 20, 30}));
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(30));
}

TEST(FiberHub, SuspendTimesOut) {
  FiberHub hub;
  bool result = true;
  hub.spawn([&] { result = hub.suspend(hub.prepare_wait(), Clock::now()); });
  run_until_idle(hub);
  EXPECT_FALSE(result);
}

TEST(FiberHub, ExceptionInFiberIsContained) {
  FiberHub hub;
  bool after = false;
  hub.spawn([] { throw std::runtime_error("boom"); });
  hub.spawn([&] { after = true; });
  EXPECT_NO_THROW(run_until_idle(hub));
  EXPECT_TRUE(after);
}

struct Flag {
  bool* destroyed;
  ~Flag() { *destroyed = true; }
};

TEST(FiberHub, DestroyingHubUnwindsSuspendedFibers) {
  bool destroyed = false;
  bool resumed = false;
  {
    FiberHub hub;
    hub.spawn([&] {
      Flag f{&destroyed};
      try {
        hub.suspend(hub.prepare_wait());
      } catch (const std::exception&) {
        // forced_unwind is not a std::exception: this must not catch it.
      }
      resumed = true;
    });
    hub.run_ready();
    EXPECT_FALSE(destroyed);
  }
  EXPECT_TRUE(destroyed);
  EXPECT_FALSE(resumed);
}

// A fiber that computes past the threshold without waiting is reported once
// it gives the thread back, by its label; fibers that wait are not.
TEST(FiberHub, StallsAreReportedWithTheFibersLabel) {
  using namespace std::chrono_literals;
  struct Report {
    std::uint64_t id;
    std::string label;
    std::chrono::milliseconds ran;
  };
  std::vector<Report> reports;
  FiberOptions options;
  options.stall_threshold = 60ms;
  options.on_stall = [&](std::uint64_t id, std::string_view label, std::chrono::milliseconds ran) {
    reports.push_back({id, std::string(label), ran});
  };
  FiberHub hub(options);
  auto spin = [](std::chrono::milliseconds d) {
    const auto until = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < until) {
    }
  };
  auto busy = hub.spawn([&] {
    hub.set_label("^/busy$");
    spin(200ms);  // one slice: reported
    hub.yield();
    spin(5ms);  // short slices after it: not
  });
  hub.spawn([&] {
    hub.set_label("^/polite$");
    for (int i = 0; i < 20; ++i) {
      spin(5ms);  // 100 ms of work in all, but never 60 ms without a yield
      hub.yield();
    }
  });
  run_until_idle(hub);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].id, busy.fiber_id);
  EXPECT_EQ(reports[0].label, "^/busy$");
  EXPECT_GE(reports[0].ran, 60ms);

  // Off without a callback or with a zero threshold.
  FiberHub quiet(FiberOptions{});
  quiet.spawn([&] { spin(60ms); });
  run_until_idle(quiet);
  EXPECT_EQ(reports.size(), 1u);
}

TEST(FiberHub, ManyFibersRecycleStacks) {
  FiberHub hub(FiberOptions{.stack_size = 64 * 1024, .max_pooled_stacks = 16});
  int sum = 0;
  for (int round = 0; round < 10; ++round) {
    for (int i = 0; i < 100; ++i)
      hub.spawn([&sum, &hub] {
        hub.yield();
        ++sum;
      });
    run_until_idle(hub);
  }
  EXPECT_EQ(sum, 1000);
}

TEST(FiberHub, ThisFiberOutsideAFiberThrows) {
  EXPECT_EQ(FiberHub::current(), nullptr);
  EXPECT_THROW(this_fiber::yield(), std::logic_error);
  FiberHub hub;
  FiberHub* seen = nullptr;
  hub.spawn([&] { seen = FiberHub::current(); });
  hub.run_ready();
  EXPECT_EQ(seen, &hub);
}

}  // namespace
}  // namespace brubeck

namespace brubeck {
namespace {

TEST(FiberHub, CancelUnwindsAWaitingFiber) {
  FiberHub hub;
  bool destroyed = false;
  bool after_wait = false;
  bool caught_as_std = false;
  auto ref = hub.spawn([&] {
    Flag f{&destroyed};
    try {
      hub.sleep_for(std::chrono::hours(1));
    } catch (const std::exception&) {
      caught_as_std = true;  // must not happen: cancellation is no std::exception
    }
    after_wait = true;
  });
  hub.run_ready();
  EXPECT_TRUE(hub.cancel(ref));
  hub.run_ready();
  EXPECT_TRUE(destroyed);
  EXPECT_FALSE(after_wait);
  EXPECT_FALSE(caught_as_std);
  EXPECT_EQ(hub.live(), 0u);
  EXPECT_FALSE(hub.cancel(ref)) << "a finished fiber cannot be cancelled";
}

TEST(FiberHub, CancelBeforeStartThrowsAtTheFirstSuspension) {
  FiberHub hub;
  int steps = 0;
  auto ref = hub.spawn([&] {
    ++steps;  // runs: cancellation only acts at suspension points
    hub.yield();
    ++steps;
  });
  EXPECT_TRUE(hub.cancel(ref));
  hub.run_ready();
  hub.run_ready();
  EXPECT_EQ(steps, 1);
  EXPECT_EQ(hub.live(), 0u);
}

}  // namespace
}  // namespace brubeck

namespace brubeck {
namespace {

// Fibers hand over to each other directly; the batch limit still holds, and
// a fiber that yields with nobody else ready simply carries on.
TEST(FiberHub, BatchLimitHoldsAcrossDirectHandovers) {
  FiberHub hub;
  std::string trace;
  for (char c : {'a', 'b', 'c'})
    hub.spawn([&trace, &hub, c] {
      trace += c;
      hub.yield();
      trace += c;
    });
  EXPECT_EQ(hub.run_ready(2), 2u);
  EXPECT_EQ(trace, "ab");
  EXPECT_EQ(hub.run_ready(4), 4u);
  EXPECT_EQ(trace, "abcabc");
  EXPECT_EQ(hub.live(), 0u);

  int rounds = 0;
  hub.spawn([&] {
    for (int i = 0; i < 5; ++i) {
      ++rounds;
      hub.yield();
    }
  });
  EXPECT_EQ(hub.run_ready(3), 3u);
  EXPECT_EQ(rounds, 3);
  EXPECT_EQ(hub.run_ready(), 3u);
  EXPECT_EQ(rounds, 5);
  EXPECT_EQ(hub.live(), 0u);
}

}  // namespace
}  // namespace brubeck

namespace brubeck {
namespace {

// Without guard pages a hub holds more fibers than vm.max_map_count / 2
// would allow guarded (40,000 here: 80,000 maps guarded, over the default).
TEST(FiberHub, UnguardedStacksAllowManyConcurrentFibers) {
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "sanitizers keep shadow memory per stack: 40,000 fibers exhaust it";
#endif
  FiberHub hub(
      FiberOptions{.stack_size = 32 * 1024, .max_pooled_stacks = 16, .guard_pages = false});
  constexpr int kFibers = 40000;
  int woke = 0;
  std::vector<WaitToken> tokens(kFibers);
  for (int i = 0; i < kFibers; ++i)
    hub.spawn([&, i] {
      tokens[static_cast<std::size_t>(i)] = hub.prepare_wait();
      if (hub.suspend(tokens[static_cast<std::size_t>(i)])) ++woke;
    });
  while (hub.run_ready() > 0) {
  }
  EXPECT_EQ(hub.live(), static_cast<std::size_t>(kFibers));
  for (auto& t : tokens) hub.wake(t);
  while (hub.run_ready() > 0) {
  }
  EXPECT_EQ(woke, kFibers);
  EXPECT_EQ(hub.live(), 0u);
}

}  // namespace
}  // namespace brubeck

namespace brubeck {
namespace {

// Deep enough to overflow any test stack; the bound only keeps the compiler
// from calling the recursion infinite.
[[gnu::noinline]] int recurse(int depth, const volatile int& limit) {
  volatile char frame[1024];
  frame[0] = static_cast<char>(depth);
  if (depth >= limit) return frame[0];
  return recurse(depth + 1, limit) + frame[0];
}

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
// A fiber that overflows its stack hits the guard page: the process ends
// with a message that says so, never with silent corruption.
TEST(FiberHubDeathTest, StackOverflowEndsTheProcessWithAClearMessage) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        FiberHub hub(FiberOptions{.stack_size = 32 * 1024, .max_pooled_stacks = 1});
        static volatile int limit = 1 << 30;
        hub.spawn([] { recurse(0, limit); });
        hub.run_ready();
      },
      "fiber stack overflow");
}
#endif

}  // namespace
}  // namespace brubeck
