// One shard's cooperative scheduler: every request runs as a fiber
// (Boost.Context) that suspends whenever it waits, so the shard's thread keeps
// serving other requests meanwhile.
//
// The hub owns a ready queue, a deadline heap and a pool of guarded stacks it
// recycles (making a guard page costs ~14 µs; reusing one costs nothing).
// Everything here runs on the hub's own thread: a wake-up from another thread
// must arrive as a task posted to the shard's reactor.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "brubeck/pipeline/errors.hpp"

namespace boost::context {
class fiber;
}

namespace brubeck {

using Clock = std::chrono::steady_clock;

struct FiberOptions {
  std::size_t stack_size = 128 * 1024;  // usable bytes; a guard page is added below
  std::size_t max_pooled_stacks = 4096;
  // A guard page below each stack turns an overflow into a SIGSEGV instead of
  // silent corruption. Each guarded stack costs two kernel memory maps, and
  // a process may have vm.max_map_count (65,530 by default) of them, so
  // about 32,000 fibers at once; without guards stacks merge into few maps.
  bool guard_pages = true;
  // A fiber that runs this long between two waits holds up every other
  // fiber of its hub (Seastar calls it a reactor stall). `on_stall` hears of
  // it when the fiber finally waits, yields or ends, on the hub's thread,
  // with the fiber's label (set_label) and how long it ran; it must not
  // wait. A fiber that never gives the thread back cannot be reported: the
  // process's own supervision has to catch that. 0: no check.
  std::chrono::milliseconds stall_threshold{0};
  std::function<void(std::uint64_t fiber_id, std::string_view label, std::chrono::milliseconds ran)>
      on_stall{};
};

// Thrown at a cancelled fiber's next suspension point, so its stack unwinds
// cleanly. Deliberately not a std::exception: a handler's
// `catch (const std::exception&)` must not swallow a cancellation.
struct FiberCancelled {};

namespace detail {
struct FiberRecord;
class StackPool;
}  // namespace detail

// Names one suspension of one fiber. A wake carrying a stale token (the fiber
// finished, or it has since moved on to another wait) is ignored, so timers,
// replies and cancellations can race without resuming the wrong wait.
struct WaitToken {
  detail::FiberRecord* record = nullptr;
  std::uint64_t fiber_id = 0;
  std::uint64_t wait_seq = 0;
};

// Names a fiber for its whole life (a WaitToken names one of its waits).
struct FiberRef {
  detail::FiberRecord* record = nullptr;
  std::uint64_t fiber_id = 0;
};

class FiberHub {
 public:
  explicit FiberHub(FiberOptions options = {});
  // Unwinds every fiber still alive (their destructors run).
  ~FiberHub();
  FiberHub(const FiberHub&) = delete;
  FiberHub& operator=(const FiberHub&) = delete;

  // Queues fn to start at the next run_ready(). An exception escaping fn is
  // logged and dropped; it never reaches the hub.
  FiberRef spawn(std::function<void()> fn);

  // Resumes at most `max` ready fibers; returns how many ran.
  std::size_t run_ready(std::size_t max = 256);
  // Makes the fibers whose deadline has passed ready; returns how many.
  std::size_t fire_timers(Clock::time_point now = Clock::now());
  // Earliest pending deadline, if any.
  std::optional<Clock::time_point> next_deadline() const;
  bool has_ready() const noexcept { return ready_head_ != nullptr; }
  // Fibers spawned and not yet finished.
  std::size_t live() const noexcept { return live_; }
  // Whether `address` lies in the guard page under the running fiber's stack
  // (how a SIGSEGV is recognised as a stack overflow and reported in words).
  bool in_guard_page(const void* address) const noexcept;
  // Timer entries held, stale ones included (bounded by compaction).
  std::size_t pending_timers() const noexcept { return timers_.size(); }

  // --- from inside a fiber of this hub ---

  // The hub running the calling fiber, or nullptr outside any fiber.
  static FiberHub* current() noexcept;
  FiberRef self() const noexcept;
  // What a stall report calls the running fiber (a route): the text must
  // outlive the fiber.
  void set_label(std::string_view label) noexcept;
  // Lets every other ready fiber run once, then continues.
  void yield();
  // Token for the next suspend(): hand it to whoever will wake this fiber.
  WaitToken prepare_wait() noexcept;
  // Suspends until wake(token) (token from prepare_wait) or the deadline;
  // returns true when woken, false on timeout. Throws DeadlineExceeded when
  // the fiber's own deadline (set_deadline) passes first, FiberCancelled when
  // the fiber is cancelled.
  bool suspend(WaitToken token, std::optional<Clock::time_point> deadline = std::nullopt);
  // The same, deaf to cancellation and to the fiber's deadline: for waits
  // that must finish, such as joining children while unwinding.
  bool suspend_uninterruptible(WaitToken token,
                               std::optional<Clock::time_point> deadline = std::nullopt);
  // Makes the waiting fiber ready. Returns false for a stale token.
  bool wake(WaitToken token) noexcept;
  void sleep_until(Clock::time_point deadline);
  // Cancels the fiber: it throws FiberCancelled at its next suspension point
  // (at once if it is waiting now). False if it has already finished.
  bool cancel(FiberRef fiber) noexcept;
  void sleep_for(Clock::duration d) { sleep_until(Clock::now() + d); }

  // A fiber's deadline bounds every suspend() it makes from then on (a
  // request's deadline); children spawned by spawn_child() inherit it.
  void set_deadline(FiberRef fiber, Clock::time_point deadline);
  // The running fiber's deadline (Clock::time_point::max() when none).
  Clock::time_point deadline() const noexcept;
  // Spawns a fiber with the running fiber's deadline (or none outside one).
  FiberRef spawn_child(std::function<void()> fn);
  // Suspends (uninterruptibly) until `fiber` has finished; returns at once
  // if it already has. One joiner per fiber.
  void join(FiberRef fiber);
  bool finished(FiberRef fiber) const noexcept;

 private:
  struct Timer {
    Clock::time_point deadline;
    WaitToken token;
    bool fiber_deadline;  // the fiber's own deadline, not one wait's
    bool operator>(const Timer& o) const noexcept { return deadline > o.deadline; }
  };
  void push_timer(const Timer& t);
  bool timer_live(const Timer& t) const noexcept;
  // Drops entries of waits that ended otherwise, so early wake-ups (a reply
  // long before its timeout) cannot pile the heap up.
  void compact_timers();

  bool suspend_impl(WaitToken token, std::optional<Clock::time_point> deadline);

  detail::FiberRecord* acquire_record();
  void release_record(detail::FiberRecord* r);
  // Leaves the running fiber `from`: straight into the next ready fiber while
  // the batch allows (one context switch, not two through the hub), else
  // back to the hub.
  void switch_out(detail::FiberRecord* from);
  // Runs first on whichever context was just resumed: files the continuation
  // of the context that switched away into that context's record.
  void on_resumed(boost::context::fiber&& continuation) noexcept;
  detail::FiberRecord* pick_next(detail::FiberRecord* from) noexcept;
  // `from`'s slice just ended: reported if it ran past the stall threshold.
  void check_stall(detail::FiberRecord* from) noexcept;
  // The ready queue is an intrusive FIFO: no allocation on the switch path.
  void push_ready(detail::FiberRecord* r) noexcept;
  detail::FiberRecord* pop_ready() noexcept;

  FiberOptions options_;
  std::unique_ptr<detail::StackPool> stacks_;
  std::vector<std::unique_ptr<detail::FiberRecord>> records_;  // owns every record
  std::vector<detail::FiberRecord*> free_records_;
  detail::FiberRecord* ready_head_ = nullptr;
  detail::FiberRecord* ready_tail_ = nullptr;
  std::vector<Timer> timers_;  // a min-heap on deadline
  std::size_t compact_at_ = 1024;
  detail::FiberRecord* running_ = nullptr;
  // The hub's own context (run_ready's caller), as a record so that every
  // switch, fiber or hub, is filed the same way.
  std::unique_ptr<detail::FiberRecord> hub_record_;
  detail::FiberRecord* switched_from_ = nullptr;
  std::size_t batch_left_ = 0;
  bool destroying_ = false;
  std::uint64_t next_fiber_id_ = 1;
  std::size_t live_ = 0;
  std::int64_t stall_ns_ = 0;        // options_.stall_threshold; 0: off
  std::int64_t slice_start_ns_ = 0;  // when the running fiber's slice began
};

// Convenience for handler code: waits on the hub running the calling fiber.
namespace this_fiber {
void yield();
void sleep_until(Clock::time_point deadline);
void sleep_for(Clock::duration d);
// The calling fiber's deadline; Clock::time_point::max() when it has none.
Clock::time_point deadline();
}  // namespace this_fiber

}  // namespace brubeck
