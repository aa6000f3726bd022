#include "brubeck/pipeline/fiber_hub.hpp"

#include <spdlog/spdlog.h>
#include <boost/context/fiber.hpp>
#include <boost/context/protected_fixedsize_stack.hpp>

#include <cassert>

namespace brubeck {
namespace detail {

struct FiberRecord {
  enum class State : std::uint8_t { idle, ready, running, waiting, done };

  boost::context::fiber context;  // the fiber, while it is not running
  boost::context::fiber caller;   // the hub, while the fiber runs
  std::function<void()> fn;
  std::uint64_t id = 0;
  std::uint64_t wait_seq = 0;
  State state = State::idle;
  bool woken = false;  // how the last suspend() ended
  bool cancelled = false;
  FiberRecord* next_ready = nullptr;
};

// Guarded stacks, kept for reuse: mmap + mprotect per request would dominate
// a short handler's cost.
class StackPool {
 public:
  StackPool(std::size_t size, std::size_t max) : alloc_(size), max_(max) {}
  ~StackPool() {
    for (auto& sc : free_) alloc_.deallocate(sc);
  }
  boost::context::stack_context take() {
    if (free_.empty()) return alloc_.allocate();
    auto sc = free_.back();
    free_.pop_back();
    return sc;
  }
  void give(boost::context::stack_context& sc) noexcept {
    if (free_.size() < max_) {
      try {
        free_.push_back(sc);
        return;
      } catch (...) {
      }
    }
    alloc_.deallocate(sc);
  }

 private:
  boost::context::protected_fixedsize_stack alloc_;
  std::size_t max_;
  std::vector<boost::context::stack_context> free_;
};

namespace {
// Boost.Context copies the allocator into the fiber's control block.
struct PooledStack {
  StackPool* pool;
  boost::context::stack_context allocate() { return pool->take(); }
  void deallocate(boost::context::stack_context& sc) noexcept { pool->give(sc); }
};

thread_local FiberHub* tl_running_hub = nullptr;
}  // namespace
}  // namespace detail

using detail::FiberRecord;
using State = FiberRecord::State;

FiberHub::FiberHub(FiberOptions options)
    : options_(options),
      stacks_(std::make_unique<detail::StackPool>(options.stack_size, options.max_pooled_stacks)) {}

FiberHub::~FiberHub() {
  // Destroying a suspended fiber unwinds its stack (forced_unwind), so the
  // objects living on it are destroyed properly.
  for (auto& r : records_) {
    if (r->state == State::idle || r->state == State::done) continue;
    running_ = r.get();
    detail::tl_running_hub = this;
    r->state = State::done;
    r->context = {};
    r->fn = nullptr;
    running_ = nullptr;
    detail::tl_running_hub = nullptr;
  }
  ready_head_ = ready_tail_ = nullptr;
  records_.clear();
}

FiberRecord* FiberHub::acquire_record() {
  if (!free_records_.empty()) {
    auto* r = free_records_.back();
    free_records_.pop_back();
    return r;
  }
  records_.push_back(std::make_unique<FiberRecord>());
  free_records_.reserve(records_.size());  // so release_record never throws
  return records_.back().get();
}

void FiberHub::release_record(FiberRecord* r) {
  r->fn = nullptr;
  r->state = State::idle;
  r->id = 0;  // stale tokens now fail the id check
  free_records_.push_back(r);
}

FiberRef FiberHub::spawn(std::function<void()> fn) {
  auto* r = acquire_record();
  r->id = next_fiber_id_++;
  r->wait_seq = 0;
  r->fn = std::move(fn);
  r->cancelled = false;
  r->context = boost::context::fiber(
      std::allocator_arg, detail::PooledStack{stacks_.get()}, [r](boost::context::fiber&& caller) {
        r->caller = std::move(caller);
        try {
          r->fn();
        } catch (const boost::context::detail::forced_unwind&) {
          throw;  // Boost's own unwinding of a destroyed fiber
        } catch (const FiberCancelled&) {
          // The normal end of a cancelled fiber: its stack has unwound.
        } catch (const std::exception& e) {
          spdlog::error("fiber {}: uncaught exception: {}", r->id, e.what());
        } catch (...) {
          spdlog::error("fiber {}: uncaught non-standard exception", r->id);
        }
        r->fn = nullptr;  // captures die on this stack, while the hub is valid
        r->state = State::done;
        return std::move(r->caller);
      });
  r->state = State::ready;
  push_ready(r);
  ++live_;
  return {r, r->id};
}

void FiberHub::push_ready(FiberRecord* r) noexcept {
  r->next_ready = nullptr;
  if (ready_tail_ != nullptr)
    ready_tail_->next_ready = r;
  else
    ready_head_ = r;
  ready_tail_ = r;
}

FiberRecord* FiberHub::pop_ready() noexcept {
  auto* r = ready_head_;
  ready_head_ = r->next_ready;
  if (ready_head_ == nullptr) ready_tail_ = nullptr;
  return r;
}

std::size_t FiberHub::run_ready(std::size_t max) {
  std::size_t n = 0;
  auto* const outer = detail::tl_running_hub;
  detail::tl_running_hub = this;
  while (n < max && ready_head_ != nullptr) {
    auto* r = pop_ready();
    running_ = r;
    r->state = State::running;
    r->context = std::move(r->context).resume();
    if (r->state == State::done) [[unlikely]] {
      --live_;
      release_record(r);
    }
    ++n;
  }
  running_ = nullptr;
  detail::tl_running_hub = outer;
  return n;
}

std::size_t FiberHub::fire_timers(Clock::time_point now) {
  std::size_t n = 0;
  while (!timers_.empty() && timers_.top().deadline <= now) {
    auto token = timers_.top().token;
    timers_.pop();
    auto* r = token.record;
    if (r->id != token.fiber_id || r->state != State::waiting || r->wait_seq != token.wait_seq)
      continue;  // woken otherwise since: a stale entry
    r->woken = false;
    r->state = State::ready;
    ++r->wait_seq;
    push_ready(r);
    ++n;
  }
  return n;
}

std::optional<Clock::time_point> FiberHub::next_deadline() const {
  if (timers_.empty()) return std::nullopt;
  return timers_.top().deadline;
}

FiberHub* FiberHub::current() noexcept { return detail::tl_running_hub; }

FiberRef FiberHub::self() const noexcept { return {running_, running_ ? running_->id : 0}; }

void FiberHub::switch_out() {
  auto* r = running_;
  assert(r != nullptr && "a hub wait called outside a fiber");
  r->caller = std::move(r->caller).resume();
}

void FiberHub::yield() {
  auto* r = running_;
  r->state = State::ready;
  push_ready(r);
  // switch_out() inlined on `r`: push_ready's stores would make the compiler
  // reload running_ otherwise, on the hottest path of the hub.
  r->caller = std::move(r->caller).resume();
  if (r->cancelled) [[unlikely]]
    throw FiberCancelled{};
}

WaitToken FiberHub::prepare_wait() noexcept {
  auto* r = running_;
  return {r, r->id, ++r->wait_seq};
}

bool FiberHub::suspend(WaitToken token, std::optional<Clock::time_point> deadline) {
  auto* r = running_;
  assert(token.record == r && token.wait_seq == r->wait_seq);
  if (deadline) timers_.push(Timer{*deadline, token});
  if (r->cancelled) throw FiberCancelled{};
  r->state = State::waiting;
  r->woken = false;
  switch_out();
  if (r->cancelled) throw FiberCancelled{};
  return r->woken;
}

bool FiberHub::cancel(FiberRef fiber) noexcept {
  auto* r = fiber.record;
  if (r == nullptr || r->id != fiber.fiber_id || r->state == State::done || r->state == State::idle)
    return false;
  r->cancelled = true;
  if (r->state == State::waiting) {
    r->state = State::ready;
    ++r->wait_seq;  // any pending wake or timer for that wait is now stale
    push_ready(r);
  }
  return true;
}

bool FiberHub::wake(WaitToken token) noexcept {
  auto* r = token.record;
  if (r == nullptr || r->id != token.fiber_id || r->state != State::waiting ||
      r->wait_seq != token.wait_seq)
    return false;
  r->woken = true;
  r->state = State::ready;
  ++r->wait_seq;
  push_ready(r);
  return true;
}

void FiberHub::sleep_until(Clock::time_point deadline) { suspend(prepare_wait(), deadline); }

namespace this_fiber {
namespace {
FiberHub& hub() {
  auto* h = FiberHub::current();
  if (h == nullptr) throw std::logic_error("brubeck::this_fiber used outside a fiber");
  return *h;
}
}  // namespace
void yield() { hub().yield(); }
void sleep_until(Clock::time_point deadline) { hub().sleep_until(deadline); }
void sleep_for(Clock::duration d) { hub().sleep_for(d); }
}  // namespace this_fiber

}  // namespace brubeck
