#include "brubeck/pipeline/reactor.hpp"

#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace brubeck {
namespace {

TEST(Reactor, RunsTasksPostedFromOtherThreadsInOrderPerPoster) {
  Reactor reactor(nullptr);
  constexpr int kPerThread = 20000;
  std::vector<int> last(2, -1);
  std::atomic<int> done{0};
  bool ordered = true;
  std::vector<std::thread> posters;
  for (int t = 0; t < 2; ++t) {
    posters.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        reactor.post_fn([&, t, i] {
          if (last[t] + 1 != i) ordered = false;
          last[t] = i;
          if (++done == 2 * kPerThread) reactor.stop();
        });
      }
    });
  }
  reactor.run();
  for (auto& p : posters) p.join();
  EXPECT_EQ(done.load(), 2 * kPerThread);
  EXPECT_TRUE(ordered);
}

// run_until returns once its condition holds, and the loop runs again
// after it (a stopped loop would not): fibers left waiting carry on.
TEST(Reactor, RunUntilReturnsAndCanRunAgain) {
  FiberHub hub;
  Reactor reactor(&hub);
  int ticks = 0;
  hub.spawn([&] {
    for (int i = 0; i < 4; ++i) {
      hub.sleep_for(std::chrono::milliseconds(2));
      ++ticks;
    }
  });
  reactor.run_until([&] { return ticks == 2; });
  EXPECT_EQ(ticks, 2);
  reactor.run_until([&] { return ticks == 4; });
  EXPECT_EQ(ticks, 4);
  EXPECT_EQ(hub.live(), 0u);
}

TEST(Reactor, WakesSleepingFibersAtTheirDeadline) {
  FiberHub hub;
  Reactor reactor(&hub);
  int woke = 0;
  for (int i = 0; i < 50; ++i) {
    hub.spawn([&] {
      hub.sleep_for(std::chrono::milliseconds(20));
      if (++woke == 50) reactor.stop();
    });
  }
  auto start = Clock::now();
  reactor.run();
  EXPECT_EQ(woke, 50);
  // 50 sleeps of 20 ms overlap; far below 50 x 20 ms.
  EXPECT_LT(Clock::now() - start, std::chrono::milliseconds(500));
}

TEST(Reactor, DispatchesReadableFds) {
  Reactor reactor(nullptr);
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  char got = 0;
  reactor.add_fd(fds[0], EPOLLIN, [&](std::uint32_t) {
    ASSERT_EQ(::read(fds[0], &got, 1), 1);
    reactor.remove_fd(fds[0]);
    reactor.stop();
  });
  std::thread writer([&] { ASSERT_EQ(::write(fds[1], "x", 1), 1); });
  reactor.run();
  writer.join();
  EXPECT_EQ(got, 'x');
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(Reactor, ThrowingTaskDoesNotStopTheLoop) {
  Reactor reactor(nullptr);
  bool second = false;
  reactor.post_fn([] { throw std::runtime_error("task failure"); });
  reactor.post_fn([&] {
    second = true;
    reactor.stop();
  });
  reactor.run();
  EXPECT_TRUE(second);
}

// A hook that reports more to do (a ZeroMQ socket not yet read to EAGAIN,
// whose fd will not fire again) must keep the loop from sleeping.
TEST(Reactor, PollHookWithMoreToDoKeepsTheLoopTurning) {
  Reactor reactor(nullptr);
  std::atomic<int> calls{0};
  reactor.add_poll_hook([&] {
    if (++calls == 1000) reactor.stop();
    return calls < 1000;
  });
  std::atomic<bool> done{false};
  std::thread watchdog([&] {
    for (int i = 0; i < 1000 && !done; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    reactor.stop();  // bounds a loop that fell asleep
  });
  auto start = Clock::now();
  reactor.run();
  done = true;
  watchdog.join();
  EXPECT_EQ(calls.load(), 1000);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
}

// A pass that did work but left nothing pending goes straight to sleep: one
// pass per wake-up, not a second non-blocking one (a system call each).
TEST(Reactor, AWakeUpThatLeavesNothingPendingSleepsAtOnce) {
  Reactor reactor(nullptr);
  std::atomic<int> passes{0};
  reactor.add_poll_hook([&] {
    ++passes;
    return false;
  });
  constexpr int kTasks = 50;
  std::atomic<int> ran{0};
  int passes_when_idle = -1;
  int passes_later = -1;
  std::thread poster([&] {
    for (int i = 0; i < kTasks; ++i) {
      reactor.post_fn([&] { ++ran; });
      for (int spin = 0; spin < 1000 && ran.load() <= i; ++spin)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    passes_when_idle = passes.load();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    passes_later = passes.load();
    reactor.stop();
  });
  reactor.run();
  poster.join();
  EXPECT_EQ(ran.load(), kTasks);
  // One pass per task (two would be the non-blocking extra), plus the first.
  EXPECT_LE(passes_when_idle, kTasks + kTasks / 4);
  EXPECT_EQ(passes_later, passes_when_idle);  // asleep while idle
}

}  // namespace
}  // namespace brubeck
