// Runs blocking or CPU-heavy code (a file read, a library with no
// nonblocking API, a password hash) on a bounded pool of threads, while the
// calling fiber waits and its shard serves other requests.
//
// The pool's queue is bounded: when it is full, offload() throws Unavailable
// at once (a 503) instead of queueing without limit.
//
// A thread cannot be interrupted safely, so a job stops early only if it
// asks: a job taking a std::stop_token (`offload([](std::stop_token st) {
// while (!st.stop_requested()) ...; })`) sees stop requested as soon as its
// fiber gives up waiting (the wait's deadline, the request's deadline, a
// cancellation), and should return soon after; a job still queued then
// starts with its token already stopped. A job that takes no token, or
// ignores it, runs to its end on its worker thread, keeping that worker
// busy; its result or exception is dropped, and nothing of the fiber that
// gave up is touched (the job owns its state; its late wake-up is ignored).
// A job that may outlive its wait must therefore own what it uses: capture
// by value, never references to the calling fiber's locals.
#pragma once

#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
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
  // Any thread: jobs waiting for a worker.
  std::size_t queued();

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
// until `finish` is called back on that reactor; false on deadline. Requests
// `stop` whenever the wait ends before the job finished (timeout, the
// fiber's deadline, cancellation).
bool offload_and_wait(OffloadPool& pool,
                      const std::function<void(std::function<void()> finish)>& job,
                      std::optional<Clock::time_point> deadline, std::stop_source stop);

template <class F>
inline constexpr bool takes_stop_token_v = std::is_invocable_v<std::decay_t<F>&, std::stop_token>;

// What fn returns, called with a stop token when it takes one. SFINAE-friendly,
// so that offload(fn, deadline) does not trip over the pool overload.
template <class F>
using offload_result_t =
    typename std::conditional_t<takes_stop_token_v<F>,
                                std::invoke_result<std::decay_t<F>&, std::stop_token>,
                                std::invoke_result<std::decay_t<F>&>>::type;
}  // namespace detail

// Runs fn on `pool` and returns its result (or rethrows its exception) in the
// calling fiber. fn takes no argument or a std::stop_token (see above).
// Throws Timeout when `deadline` passes first, DeadlineExceeded when the
// request's deadline does, FiberCancelled when the fiber is cancelled,
// Unavailable when the pool is full; in each case but the last the job's
// token is stopped.
template <class F>
auto offload(OffloadPool& pool, F&& fn, std::optional<Clock::time_point> deadline = std::nullopt)
    -> detail::offload_result_t<F> {
  using T = detail::offload_result_t<F>;
  struct State {
    std::conditional_t<std::is_void_v<T>, bool, std::optional<T>> value{};
    std::exception_ptr error;
  };
  auto state = std::make_shared<State>();
  std::stop_source stop;
  auto job = [state, fn = std::forward<F>(fn),
              token = stop.get_token()](std::function<void()> finish) mutable {
    try {
      auto call = [&]() -> decltype(auto) {
        if constexpr (detail::takes_stop_token_v<F>)
          return fn(token);
        else
          return fn();
      };
      if constexpr (std::is_void_v<T>)
        call();
      else
        state->value.emplace(call());
    } catch (...) {
      state->error = std::current_exception();
    }
    finish();
  };
  if (!detail::offload_and_wait(pool, job, deadline, std::move(stop)))
    throw Timeout("offloaded job timed out");
  if (state->error) std::rethrow_exception(state->error);
  if constexpr (!std::is_void_v<T>) return std::move(*state->value);
}

template <class F>
auto offload(F&& fn, std::optional<Clock::time_point> deadline = std::nullopt) {
  return offload(OffloadPool::default_pool(), std::forward<F>(fn), deadline);
}

}  // namespace brubeck
