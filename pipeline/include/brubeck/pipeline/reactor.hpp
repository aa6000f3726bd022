// The event loop of one thread (a shard, or the router): runs tasks posted
// from other threads, ready fibers and expired timers of an optional fiber
// hub, and file descriptors, then sleeps in epoll until the next deadline.
//
// Posting from another thread wakes the loop (an eventfd write) only when it
// is asleep and its queue was empty, so a busy loop takes hand-offs in
// batches without system calls.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "brubeck/pipeline/fiber_hub.hpp"

namespace brubeck {

// A unit of work handed to a reactor from any thread.
class Task {
 public:
  virtual ~Task() = default;
  virtual void run() = 0;

 private:
  friend class Reactor;
  Task* next_ = nullptr;  // intrusive link of the lock-free inbox
};

class Reactor;

// A handle to post to a reactor that may be gone by then (a worker thread
// finishing late): posts after the reactor's destruction are dropped.
class ReactorAnchor {
 public:
  explicit ReactorAnchor(Reactor* r) : reactor_(r) {}
  // False when the reactor is gone (the task is destroyed, not run).
  bool post(std::unique_ptr<Task> task) noexcept;
  template <class F>
  bool post_fn(F&& f);

 private:
  friend class Reactor;
  std::mutex mutex_;
  Reactor* reactor_;
};

struct ReactorOptions {
  // Busy-poll this long before sleeping: a wake-up across cores costs far more.
  std::chrono::microseconds idle_poll{0};
  std::size_t fiber_batch = 256;  // fibers run per pass, so I/O is never starved
  // Tasks run per pass: a burst of requests then runs (and frees its fiber
  // stacks) between batches instead of holding a stack per queued request.
  std::size_t task_batch = 64;
};

class Reactor {
 public:
  // `hub` may be null (a loop without fibers); it must outlive the reactor.
  explicit Reactor(FiberHub* hub, ReactorOptions options = {});
  ~Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  // Any thread. The task runs on the loop thread, in posting order per poster.
  void post(std::unique_ptr<Task> task) noexcept;
  template <class F>
  void post_fn(F&& f) {
    struct Fn final : Task {
      explicit Fn(F&& g) : fn(std::forward<F>(g)) {}
      void run() override { fn(); }
      std::decay_t<F> fn;
    };
    post(std::make_unique<Fn>(std::forward<F>(f)));
  }

  // Loop thread only. `events` are EPOLL* flags; the callback gets what fired.
  void add_fd(int fd, std::uint32_t events, std::function<void(std::uint32_t)> on_ready);
  void modify_fd(int fd, std::uint32_t events);
  void remove_fd(int fd);
  // Called on every pass; returns true when it has more to do right away (the
  // loop then passes again instead of sleeping). Needed for ZeroMQ, whose
  // ZMQ_FD is edge-like: a socket not read to EAGAIN never fires it again.
  void add_poll_hook(std::function<bool()> hook);

  // Runs until stop(); call on the thread that owns the loop.
  void run();
  // Runs until stop() or until `done` returns true, asked after each pass
  // has run the ready fibers; unlike after stop(), the loop may be run
  // again. How a test client runs one request at a time on one reactor.
  void run_until(const std::function<bool()>& done);
  // Any thread: run() returns after its current pass.
  void stop() noexcept;
  bool stopping() const noexcept { return stop_.load(std::memory_order_acquire); }

  FiberHub* hub() const noexcept { return hub_; }
  const std::shared_ptr<ReactorAnchor>& anchor() const noexcept { return anchor_; }
  // The reactor whose run() is on the calling thread, or nullptr.
  static Reactor* current() noexcept;

  // From a fiber of this reactor's hub: suspends until `fd` is ready for
  // `events` (EPOLLIN and/or EPOLLOUT; hang-ups and errors count as ready) or
  // the deadline passes (false). The fiber's own deadline applies as well.
  // One reading and one writing fiber per fd at a time; the fd must not be
  // registered with add_fd().
  bool wait_fd(int fd, std::uint32_t events,
               std::optional<Clock::time_point> deadline = std::nullopt);

 private:
  bool drain_inbox();
  void wake() noexcept;

  FiberHub* hub_;
  ReactorOptions options_;
  std::shared_ptr<ReactorAnchor> anchor_;
  int epoll_fd_ = -1;
  int event_fd_ = -1;
  std::atomic<Task*> inbox_{nullptr};
  Task* backlog_ = nullptr;  // taken from the inbox, oldest first, not yet run
  std::atomic<bool> sleeping_{false};
  std::atomic<bool> stop_{false};
  std::unordered_map<int, std::function<void(std::uint32_t)>> fds_;
  struct FdWaiters {
    WaitToken in, out;
    std::uint32_t registered = 0;
  };
  void on_fd_wait_ready(int fd, std::uint32_t events) noexcept;
  void update_fd_wait(int fd, FdWaiters& w);
  std::unordered_map<int, FdWaiters> fd_waits_;
  std::vector<std::function<bool()>> poll_hooks_;
};

template <class F>
bool ReactorAnchor::post_fn(F&& f) {
  struct Fn final : Task {
    explicit Fn(F&& g) : fn(std::forward<F>(g)) {}
    void run() override { fn(); }
    std::decay_t<F> fn;
  };
  return post(std::make_unique<Fn>(std::forward<F>(f)));
}

}  // namespace brubeck
