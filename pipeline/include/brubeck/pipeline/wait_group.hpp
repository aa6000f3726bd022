// Waits for a number of tasks to finish, as Go's sync.WaitGroup: add() before
// starting each, done() when each ends, wait() until the count is zero.
#pragma once

#include <cassert>

#include "brubeck/pipeline/detail/wait_queue.hpp"

namespace brubeck {

class WaitGroup {
 public:
  void add(std::size_t n = 1) noexcept { count_ += n; }
  void done() noexcept {
    assert(count_ > 0);
    if (--count_ == 0) waiters_.notify_all();
  }
  std::size_t count() const noexcept { return count_; }
  // True when the count reached zero; false when the deadline passed first.
  bool wait(std::optional<Clock::time_point> deadline = std::nullopt) {
    while (count_ > 0) {
      detail::WaitQueue::Node node;
      if (!waiters_.wait(node, deadline) && !node.granted) return count_ == 0;
    }
    return true;
  }

 private:
  std::size_t count_ = 0;
  detail::WaitQueue waiters_;
};

}  // namespace brubeck
