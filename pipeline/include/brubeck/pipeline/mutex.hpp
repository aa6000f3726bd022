// A mutex for fibers of one shard: lock() suspends the fiber, never the
// thread. Ownership passes straight to the longest waiter on unlock(), so a
// busy fiber cannot starve the others. Works with std::lock_guard and
// std::unique_lock. Not for sharing between shards (use an actor for that).
#pragma once

#include "brubeck/pipeline/detail/wait_queue.hpp"

namespace brubeck {

class Mutex {
 public:
  void lock() { (void)lock_until(std::nullopt); }
  bool try_lock() noexcept {
    if (locked_) return false;
    locked_ = true;
    return true;
  }
  // False when the deadline passed first.
  bool try_lock_until(Clock::time_point deadline) { return lock_until(deadline); }
  template <class Rep, class Period>
  bool try_lock_for(std::chrono::duration<Rep, Period> d) {
    return lock_until(Clock::now() + d);
  }
  void unlock() noexcept {
    // Hand over: the mutex stays locked, now on behalf of the woken waiter.
    if (!waiters_.notify_one()) locked_ = false;
  }
  bool locked() const noexcept { return locked_; }

  // Used by ConditionVariable to re-take the lock whatever happens.
  void lock_uninterruptible() { (void)lock_until(std::nullopt, false); }

 private:
  bool lock_until(std::optional<Clock::time_point> deadline, bool interruptible = true) {
    if (try_lock()) return true;
    detail::WaitQueue::Node node;
    try {
      if (waiters_.wait(node, deadline, interruptible)) return true;
    } catch (...) {
      if (node.granted) unlock();  // handed over while we were being cancelled
      throw;
    }
    if (node.granted) return true;  // granted just as the deadline fired
    return false;
  }

  bool locked_ = false;
  detail::WaitQueue waiters_;
};

}  // namespace brubeck
