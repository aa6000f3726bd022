// Waiting for a state change among fibers of one shard: ConditionVariable
// (with a brubeck::Mutex, as std::condition_variable) and Event (a flag that
// fibers wait to see set).
#pragma once

#include <concepts>
#include <mutex>

#include "brubeck/pipeline/mutex.hpp"

namespace brubeck {

class ConditionVariable {
 public:
  // Unlocks, waits for a notify (true) or the deadline (false), relocks. The
  // lock is held again on return and when an exception leaves.
  bool wait(std::unique_lock<Mutex>& lock,
            std::optional<Clock::time_point> deadline = std::nullopt) {
    detail::WaitQueue::Node node;
    Mutex* mutex = lock.release();
    mutex->unlock();
    struct Relock {
      std::unique_lock<Mutex>& lock;
      Mutex* mutex;
      ~Relock() {
        mutex->lock_uninterruptible();
        lock = std::unique_lock<Mutex>(*mutex, std::adopt_lock);
      }
    } relock{lock, mutex};
    return waiters_.wait(node, deadline) || node.granted;
  }
  template <class Predicate>
  requires std::predicate<Predicate&>
  bool wait(std::unique_lock<Mutex>& lock, Predicate ready,
            std::optional<Clock::time_point> deadline = std::nullopt) {
    while (!ready())
      if (!wait(lock, deadline)) return ready();
    return true;
  }
  void notify_one() noexcept { waiters_.notify_one(); }
  void notify_all() noexcept { waiters_.notify_all(); }

 private:
  detail::WaitQueue waiters_;
};

class Event {
 public:
  void set() noexcept {
    set_ = true;
    waiters_.notify_all();
  }
  void clear() noexcept { set_ = false; }
  bool is_set() const noexcept { return set_; }
  // True once set; false when the deadline passed first.
  bool wait(std::optional<Clock::time_point> deadline = std::nullopt) {
    while (!set_) {
      detail::WaitQueue::Node node;
      if (!waiters_.wait(node, deadline) && !node.granted) return set_;
    }
    return true;
  }

 private:
  bool set_ = false;
  detail::WaitQueue waiters_;
};

}  // namespace brubeck
