// A bounded FIFO between fibers of one shard: send() waits while it is full,
// recv() while it is empty, so a fast producer is held back instead of
// queueing without limit. close() lets receivers drain what is left.
#pragma once

#include <deque>
#include <stdexcept>

#include "brubeck/pipeline/detail/wait_queue.hpp"

namespace brubeck {

struct ChannelClosed : std::runtime_error {
  ChannelClosed() : std::runtime_error("send on a closed channel") {}
};

template <class T>
class Channel {
 public:
  explicit Channel(std::size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

  // Waits for room; throws ChannelClosed, or Timeout at the deadline.
  void send(T value, std::optional<Clock::time_point> deadline = std::nullopt) {
    while (items_.size() >= capacity_ && !closed_) {
      detail::WaitQueue::Node node;
      if (!senders_.wait(node, deadline) && !node.granted) throw Timeout("channel send timed out");
    }
    if (closed_) throw ChannelClosed{};
    items_.push_back(std::move(value));
    receivers_.notify_one();
  }
  bool try_send(T value) {
    if (closed_ || items_.size() >= capacity_) return false;
    items_.push_back(std::move(value));
    receivers_.notify_one();
    return true;
  }
  // The next value; nullopt once closed and drained; Timeout at the deadline.
  std::optional<T> recv(std::optional<Clock::time_point> deadline = std::nullopt) {
    while (items_.empty() && !closed_) {
      detail::WaitQueue::Node node;
      if (!receivers_.wait(node, deadline) && !node.granted)
        throw Timeout("channel recv timed out");
    }
    return take();
  }
  std::optional<T> try_recv() { return take(); }
  void close() noexcept {
    closed_ = true;
    receivers_.notify_all();
    senders_.notify_all();
  }
  bool closed() const noexcept { return closed_; }
  std::size_t size() const noexcept { return items_.size(); }
  std::size_t capacity() const noexcept { return capacity_; }

 private:
  std::optional<T> take() {
    if (items_.empty()) return std::nullopt;
    std::optional<T> v{std::move(items_.front())};
    items_.pop_front();
    senders_.notify_one();
    return v;
  }

  std::size_t capacity_;
  bool closed_ = false;
  std::deque<T> items_;
  detail::WaitQueue senders_;
  detail::WaitQueue receivers_;
};

}  // namespace brubeck
