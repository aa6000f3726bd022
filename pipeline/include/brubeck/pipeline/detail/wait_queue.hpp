// FIFO of fibers waiting on one synchronisation object. Nodes live on the
// waiting fibers' stacks and unlink themselves when a wait ends any other way
// (timeout, deadline, cancellation), so a notify only ever reaches a fiber
// that still waits.
#pragma once

#include <optional>

#include "brubeck/pipeline/fiber_hub.hpp"

namespace brubeck::detail {

class WaitQueue {
 public:
  struct Node {
    FiberHub* hub = nullptr;
    WaitToken token;
    Node* prev = nullptr;
    Node* next = nullptr;
    bool linked = false;
    bool granted = false;  // set by the notifier before the wake
  };

  WaitQueue() = default;
  WaitQueue(const WaitQueue&) = delete;
  WaitQueue& operator=(const WaitQueue&) = delete;

  // Suspends the running fiber until notified (true) or the deadline (false).
  // `node.granted` tells, even after an exception, whether a notify reached it.
  bool wait(Node& node, std::optional<Clock::time_point> deadline, bool interruptible = true) {
    auto* hub = FiberHub::current();
    if (hub == nullptr) throw std::logic_error("brubeck: a fiber wait called outside a fiber");
    node.hub = hub;
    node.token = hub->prepare_wait();
    link(node);
    struct Unlink {
      WaitQueue* q;
      Node* n;
      ~Unlink() {
        if (n->linked) q->unlink(*n);
      }
    } guard{this, &node};
    return interruptible ? hub->suspend(node.token, deadline)
                         : hub->suspend_uninterruptible(node.token, deadline);
  }

  // Wakes the longest waiter; false when none waits.
  bool notify_one() noexcept {
    while (head_ != nullptr) {
      Node* n = head_;
      unlink(*n);
      n->granted = true;
      if (n->hub->wake(n->token)) return true;
    }
    return false;
  }
  void notify_all() noexcept {
    while (notify_one()) {
    }
  }
  bool empty() const noexcept { return head_ == nullptr; }

 private:
  void link(Node& n) noexcept {
    n.prev = tail_;
    n.next = nullptr;
    if (tail_ != nullptr)
      tail_->next = &n;
    else
      head_ = &n;
    tail_ = &n;
    n.linked = true;
  }
  void unlink(Node& n) noexcept {
    (n.prev != nullptr ? n.prev->next : head_) = n.next;
    (n.next != nullptr ? n.next->prev : tail_) = n.prev;
    n.linked = false;
  }

  Node* head_ = nullptr;
  Node* tail_ = nullptr;
};

}  // namespace brubeck::detail
