// Fiber synchronisation on one hub: mutex hand-over, condition variables,
// events, bounded channels, wait groups, child fibers and request deadlines.
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "brubeck/pipeline/channel.hpp"
#include "brubeck/pipeline/condition.hpp"
#include "brubeck/pipeline/fiber_hub.hpp"
#include "brubeck/pipeline/mutex.hpp"
#include "brubeck/pipeline/spawn.hpp"
#include "brubeck/pipeline/wait_group.hpp"

namespace brubeck {
namespace {

using namespace std::chrono_literals;

// Runs the hub until every fiber has ended (bounded: 10 s).
void run_until_idle(FiberHub& hub) {
  auto limit = Clock::now() + std::chrono::seconds(10);
  while (hub.live() > 0 && Clock::now() < limit) {
    hub.fire_timers();
    hub.run_ready();
    if (hub.live() > 0 && !hub.has_ready())
      if (auto next = hub.next_deadline()) std::this_thread::sleep_until(std::min(*next, limit));
  }
  ASSERT_EQ(hub.live(), 0u);
}

TEST(FiberMutex, HandsOverInArrivalOrderAcrossSuspensions) {
  FiberHub hub;
  Mutex mutex;
  std::string trace;
  for (char c : {'a', 'b', 'c'})
    hub.spawn([&, c] {
      std::lock_guard lock(mutex);
      trace += c;
      hub.yield();  // holds the lock across a suspension: nobody else gets in
      trace += c;
    });
  run_until_idle(hub);
  EXPECT_EQ(trace, "aabbcc");
  EXPECT_FALSE(mutex.locked());
}

TEST(FiberMutex, TryLockForTimesOutAndCancelledWaiterPassesTheLockOn) {
  FiberHub hub;
  Mutex mutex;
  bool timed_out = false;
  bool third_got_it = false;
  FiberRef second;
  hub.spawn([&] {
    std::lock_guard lock(mutex);
    hub.sleep_for(30ms);
  });
  second = hub.spawn([&] { std::lock_guard lock(mutex); });
  hub.spawn([&] {
    timed_out = !mutex.try_lock_for(5ms);
    std::lock_guard lock(mutex);
    third_got_it = true;
  });
  hub.run_ready();
  hub.cancel(second);  // leaves the queue without taking the lock
  run_until_idle(hub);
  EXPECT_TRUE(timed_out);
  EXPECT_TRUE(third_got_it);
  EXPECT_FALSE(mutex.locked());
}

TEST(FiberCondition, ProducerConsumer) {
  FiberHub hub;
  Mutex mutex;
  ConditionVariable cv;
  std::vector<int> queue;
  std::vector<int> got;
  hub.spawn([&] {
    std::unique_lock lock(mutex);
    while (got.size() < 5) {
      cv.wait(lock, [&] { return !queue.empty(); });
      got.push_back(queue.front());
      queue.erase(queue.begin());
    }
  });
  hub.spawn([&] {
    for (int i = 0; i < 5; ++i) {
      {
        std::lock_guard lock(mutex);
        queue.push_back(i);
      }
      cv.notify_one();
      hub.sleep_for(1ms);
    }
  });
  run_until_idle(hub);
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(FiberCondition, WaitTimesOutWithTheLockHeld) {
  FiberHub hub;
  Mutex mutex;
  ConditionVariable cv;
  bool result = true;
  bool held = false;
  hub.spawn([&] {
    std::unique_lock lock(mutex);
    result = cv.wait(lock, Clock::now() + 5ms);
    held = lock.owns_lock() && mutex.locked();
  });
  run_until_idle(hub);
  EXPECT_FALSE(result);
  EXPECT_TRUE(held);
  EXPECT_FALSE(mutex.locked());
}

TEST(FiberEvent, WakesEveryWaiter) {
  FiberHub hub;
  Event event;
  int woken = 0;
  for (int i = 0; i < 3; ++i)
    hub.spawn([&] {
      if (event.wait()) ++woken;
    });
  hub.spawn([&] {
    hub.sleep_for(2ms);
    event.set();
  });
  bool timed_out = false;
  hub.spawn([&] {
    Event never;
    timed_out = !never.wait(Clock::now() + 1ms);
  });
  run_until_idle(hub);
  EXPECT_EQ(woken, 3);
  EXPECT_TRUE(timed_out);
}

TEST(FiberChannel, BoundedSendWaitsForTheReceiver) {
  FiberHub hub;
  Channel<int> channel(2);
  std::vector<std::string> trace;
  hub.spawn([&] {
    for (int i = 0; i < 5; ++i) {
      channel.send(i);
      trace.push_back("sent " + std::to_string(i));
    }
    channel.close();
  });
  hub.spawn([&] {
    while (auto v = channel.recv()) trace.push_back("got " + std::to_string(*v));
  });
  run_until_idle(hub);
  // Capacity 2: the sender is two ahead at most.
  int ahead = 0;
  int max_ahead = 0;
  for (auto& t : trace) {
    ahead += t.starts_with("sent") ? 1 : -1;
    max_ahead = std::max(max_ahead, ahead);
  }
  EXPECT_LE(max_ahead, 3);  // two buffered, plus one handed straight over
  EXPECT_EQ(std::count_if(trace.begin(), trace.end(), [](auto& t) { return t.starts_with("got"); }),
            5);
}

TEST(FiberChannel, ClosedAndTimeouts) {
  FiberHub hub;
  Channel<std::string> channel(1);
  bool recv_timeout = false;
  bool send_closed = false;
  std::optional<std::string> after_close;
  hub.spawn([&] {
    try {
      channel.recv(Clock::now() + 1ms);
    } catch (const Timeout&) {
      recv_timeout = true;
    }
    channel.send("x");
    channel.close();
    try {
      channel.send("y");
    } catch (const ChannelClosed&) {
      send_closed = true;
    }
    after_close = channel.recv();  // still drains what was sent
  });
  run_until_idle(hub);
  EXPECT_TRUE(recv_timeout);
  EXPECT_TRUE(send_closed);
  EXPECT_EQ(after_close, "x");
}

TEST(FiberWaitGroup, WaitsForAll) {
  FiberHub hub;
  WaitGroup group;
  int done = 0;
  bool waited = false;
  for (int i = 1; i <= 3; ++i) {
    group.add();
    hub.spawn([&, i] {
      hub.sleep_for(std::chrono::milliseconds(i));
      ++done;
      group.done();
    });
  }
  hub.spawn([&] {
    waited = group.wait();
    EXPECT_EQ(done, 3);
  });
  run_until_idle(hub);
  EXPECT_TRUE(waited);
}

TEST(ChildFibers, FanOutRunsConcurrentlyAndJoinsResults) {
  FiberHub hub;
  int sum = 0;
  Clock::duration took{};
  hub.spawn([&] {
    auto start = Clock::now();
    std::vector<Joinable<int>> children;
    for (int i = 1; i <= 3; ++i)
      children.push_back(spawn([i] {
        this_fiber::sleep_for(30ms);
        return i;
      }));
    for (auto& c : children) sum += c.join();
    took = Clock::now() - start;
  });
  run_until_idle(hub);
  EXPECT_EQ(sum, 6);
  EXPECT_LT(took, 85ms) << "three 30 ms waits ran one after another";
}

TEST(ChildFibers, JoinRethrowsAndDroppedChildIsCancelled) {
  FiberHub hub;
  std::string error;
  bool child_finished_its_sleep = false;
  hub.spawn([&] {
    auto failing = spawn([]() -> int { throw std::runtime_error("child failed"); });
    try {
      failing.join();
    } catch (const std::runtime_error& e) {
      error = e.what();
    }
    auto sleeper = spawn([&] {
      this_fiber::sleep_for(std::chrono::hours(1));
      child_finished_its_sleep = true;
    });
    hub.yield();
    // `sleeper` goes out of scope unjoined: it is cancelled and joined here.
  });
  run_until_idle(hub);
  EXPECT_EQ(error, "child failed");
  EXPECT_FALSE(child_finished_its_sleep);
}

TEST(RequestDeadline, EndsEveryWaitAndIsInheritedByChildren) {
  FiberHub hub;
  bool parent_deadline = false;
  bool child_deadline = false;
  auto start = Clock::now();
  auto ref = hub.spawn([&] {
    auto child = spawn([&] {
      try {
        this_fiber::sleep_for(std::chrono::hours(1));
      } catch (const DeadlineExceeded&) {
        child_deadline = true;
      }
    });
    try {
      this_fiber::sleep_for(std::chrono::hours(1));
    } catch (const DeadlineExceeded&) {
      parent_deadline = true;
    }
    child.join();
  });
  hub.set_deadline(ref, Clock::now() + 20ms);
  run_until_idle(hub);
  EXPECT_TRUE(parent_deadline);
  EXPECT_TRUE(child_deadline);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
}

TEST(RequestDeadline, AnEarlierOwnDeadlineIsAPlainTimeout) {
  FiberHub hub;
  bool woken = true;
  auto ref = hub.spawn([&] {
    auto token = hub.prepare_wait();
    woken = hub.suspend(token, Clock::now() + 1ms);  // no exception: its own limit
  });
  hub.set_deadline(ref, Clock::now() + std::chrono::hours(1));
  run_until_idle(hub);
  EXPECT_FALSE(woken);
}

}  // namespace
}  // namespace brubeck

namespace brubeck {
namespace {

// Waits woken long before their timeouts, under a request deadline, as a
// busy shard does all day: the timer heap stays bounded, and one deadline
// timer per fiber serves all of its waits.
TEST(RequestDeadline, EarlyWakeUpsDoNotPileUpTimers) {
  FiberHub hub;
  WaitToken token;
  bool stop = false;
  auto ref = hub.spawn([&] {
    while (!stop) {
      token = hub.prepare_wait();
      hub.suspend(token, Clock::now() + std::chrono::hours(1));
    }
  });
  hub.set_deadline(ref, Clock::now() + std::chrono::hours(2));
  hub.run_ready();
  std::size_t most = 0;
  for (int i = 0; i < 100000; ++i) {
    hub.wake(token);
    hub.run_ready();
    most = std::max(most, hub.pending_timers());
  }
  EXPECT_LE(most, 2048u) << "stale timer entries piled up";
  stop = true;
  hub.wake(token);
  hub.run_ready();
  EXPECT_EQ(hub.live(), 0u);
}

}  // namespace
}  // namespace brubeck
