// Runs blocking or CPU-heavy code (a file read, a library with no
// nonblocking API, a password hash) on a bounded pool of threads, while the
// calling fiber waits and its shard serves other requests.
//
// The pool's queue is bounded: when it is full, offload() throws Unavailable
// at once (a 503) instead of queueing without limit. A fiber whose deadline
// passes stops waiting; the job still runs to its end on its thread and its
// result is dropped, since a thread cannot be interrupted safely.
#pragma once

#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <vector>

#include "brubeck/pipeline/errors.hpp"
#include "brubeck/pipeline/fiber_hub.hpp"
#include "brubeck/pipeline/reactor.hpp"

namespace brubeck {

class OffloadPool {
 public:
  OffloadPool(std::size_t threads, std::size_t max_queued);
  // Runs what is queued, then joins the threads.
  ~OffloadPool();
  OffloadPool(const OffloadPool&) = delete;
  OffloadPool& operator=(const OffloadPool&) = delete;

  // Any thread. False when the queue is full.
  bool try_submit(std::function<void()> job);
  std::size_t threads() const noexcept { return threads_.size(); }

  // The process-wide pool offload() uses: created on first use, with
  // configure_default() values if called before (default: 4 threads per
  // core, 1,024 queued jobs).
  static OffloadPool& default_pool();
  static void configure_default(std::size_t threads, std::size_t max_queued);

 private:
  void work();

  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  std::size_t max_queued_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

namespace detail {
// Submits job to the pool and suspends the calling fiber of a running reactor
// until `finish` is called back on that reactor; false on deadline.
bool offload_and_wait(OffloadPool& pool,
                      const std::function<void(std::function<void()> finish)>& job,
                      std::optional<Clock::time_point> deadline);
}  // namespace detail

// Runs fn on `pool` and returns its result (or rethrows its exception) in the
// calling fiber. Throws Timeout when `deadline` passes first, DeadlineExceeded
// when the request's deadline does, Unavailable when the pool is full.
template <class F>
auto offload(OffloadPool& pool, F&& fn, std::optional<Clock::time_point> deadline = std::nullopt)
    -> std::invoke_result_t<std::decay_t<F>&> {
  using T = std::invoke_result_t<std::decay_t<F>&>;
  struct State {
    std::conditional_t<std::is_void_v<T>, bool, std::optional<T>> value{};
    std::exception_ptr error;
  };
  auto state = std::make_shared<State>();
  auto job = [state, fn = std::forward<F>(fn)](std::function<void()> finish) mutable {
    try {
      if constexpr (std::is_void_v<T>)
        fn();
      else
        state->value.emplace(fn());
    } catch (...) {
      state->error = std::current_exception();
    }
    finish();
  };
  if (!detail::offload_and_wait(pool, job, deadline)) throw Timeout("offloaded job timed out");
  if (state->error) std::rethrow_exception(state->error);
  if constexpr (!std::is_void_v<T>) return std::move(*state->value);
}

template <class F>
auto offload(F&& fn, std::optional<Clock::time_point> deadline = std::nullopt) {
  return offload(OffloadPool::default_pool(), std::forward<F>(fn), deadline);
}

}  // namespace brubeck
