#include "brubeck/pipeline/fiber_hub.hpp"

#include <spdlog/spdlog.h>
#include <boost/context/fiber.hpp>
#include <boost/context/protected_fixedsize_stack.hpp>

#include <signal.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cstring>
#include <mutex>
#include <new>

namespace brubeck {
namespace detail {

struct FiberRecord {
  enum class State : std::uint8_t { idle, ready, running, waiting, done };

  // This context's continuation while it is not running (for the hub's own
  // record: run_ready's caller while fibers run).
  boost::context::fiber context;
  std::function<void()> fn;
  std::uint64_t id = 0;
  std::uint64_t wait_seq = 0;
  State state = State::idle;
  bool woken = false;  // how the last suspend() ended
  bool cancelled = false;
  FiberRecord* next_ready = nullptr;
  bool uninterruptible = false;  // in suspend_uninterruptible()
  Clock::time_point deadline = Clock::time_point::max();
  WaitToken joiner;
  const char* guard_low = nullptr;  // the guard page under this fiber's stack, if any
  std::string_view label;           // what a stall report calls it
};

// Guarded stacks, kept for reuse: mmap + mprotect per request would dominate
// a short handler's cost.
class StackPool {
 public:
  StackPool(std::size_t size, std::size_t max, bool guard)
      : alloc_(size), size_(round_to_pages(size)), max_(max), guard_(guard) {}
  ~StackPool() {
    for (auto& sc : free_) release(sc);
  }
  bool guarded() const noexcept { return guard_; }
  boost::context::stack_context take() {
    if (free_.empty()) return make();
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
    release(sc);
  }

 private:
  static std::size_t round_to_pages(std::size_t n) {
    auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    return (n + page - 1) / page * page;
  }
  boost::context::stack_context make() {
    if (guard_) return alloc_.allocate();
    // Unguarded: plain anonymous memory, which the kernel merges with its
    // neighbours into few maps; pages count only once touched.
    void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    boost::context::stack_context sc;
    sc.size = size_;
    sc.sp = static_cast<char*>(p) + size_;
    return sc;
  }
  void release(boost::context::stack_context& sc) noexcept {
    if (guard_)
      alloc_.deallocate(sc);
    else
      ::munmap(static_cast<char*>(sc.sp) - sc.size, sc.size);
  }

  boost::context::protected_fixedsize_stack alloc_;
  std::size_t size_;
  std::size_t max_;
  bool guard_;
  std::vector<boost::context::stack_context> free_;
};

namespace {
// Boost.Context copies the allocator into the fiber's control block.
struct PooledStack {
  StackPool* pool;
  FiberRecord* record;
  boost::context::stack_context allocate() {
    auto sc = pool->take();
    record->guard_low = pool->guarded() ? static_cast<const char*>(sc.sp) - sc.size : nullptr;
    return sc;
  }
  void deallocate(boost::context::stack_context& sc) noexcept { pool->give(sc); }
};

thread_local FiberHub* tl_running_hub = nullptr;

// A fiber that overflows its stack hits the guard page below it: SIGSEGV.
// The handler (on an alternate stack: the fiber's own is exhausted) says so
// in words, then lets the default action end the process. Sanitizer builds
// keep their own reports.
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
struct sigaction g_previous_segv;

void write_all(const char* text) {
  std::size_t n = std::strlen(text);
  while (n > 0) {
    auto w = ::write(STDERR_FILENO, text, n);
    if (w <= 0) return;
    text += w;
    n -= static_cast<std::size_t>(w);
  }
}

void on_segv(int sig, siginfo_t* info, void* context) {
  auto* hub = tl_running_hub;
  if (hub != nullptr && hub->in_guard_page(info->si_addr)) {
    write_all(
        "brubeck: fiber stack overflow: a request's fiber ran past its stack and hit the guard "
        "page below it. Raise stack_size (--stack-size, BRUBECK_STACK_SIZE) or use less stack "
        "(deep recursion, large local arrays). The process ends now; run several handler "
        "processes behind Mongrel2 so the site stays up while it restarts.\n");
    ::signal(SIGSEGV, SIG_DFL);  // the faulting access repeats and ends the process
    return;
  }
  if (g_previous_segv.sa_flags & SA_SIGINFO) {
    if (g_previous_segv.sa_sigaction != nullptr)
      return g_previous_segv.sa_sigaction(sig, info, context);
  } else if (g_previous_segv.sa_handler != SIG_DFL && g_previous_segv.sa_handler != SIG_IGN &&
             g_previous_segv.sa_handler != nullptr) {
    return g_previous_segv.sa_handler(sig);
  }
  ::signal(SIGSEGV, SIG_DFL);
}

void install_overflow_report() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGSEGV, &sa, &g_previous_segv);
  });
  // Each thread running fibers needs an alternate stack for the handler.
  thread_local std::unique_ptr<char[]> alt;
  if (!alt) {
    constexpr std::size_t kSize = 64 * 1024;
    alt = std::make_unique<char[]>(kSize);
    stack_t ss{};
    ss.ss_sp = alt.get();
    ss.ss_size = kSize;
    ::sigaltstack(&ss, nullptr);
  }
}
#else
void install_overflow_report() {}
#endif
}  // namespace
}  // namespace detail

using detail::FiberRecord;
using State = FiberRecord::State;

FiberHub::FiberHub(FiberOptions options)
    : options_(options),
      stacks_(std::make_unique<detail::StackPool>(options.stack_size, options.max_pooled_stacks,
                                                  options.guard_pages)),
      hub_record_(std::make_unique<FiberRecord>()),
      stall_ns_(options.on_stall ? std::chrono::nanoseconds(options.stall_threshold).count() : 0) {
  if (options.guard_pages) detail::install_overflow_report();
}

namespace {
// The coarse clock (a few ms of resolution, read without a system call in
// a few ns): stalls that matter last tens of milliseconds, and the check
// runs at every switch.
std::int64_t coarse_now_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}
}  // namespace

void FiberHub::check_stall(FiberRecord* from) noexcept {
  const std::int64_t now = coarse_now_ns();
  const std::int64_t ran = now - slice_start_ns_;
  slice_start_ns_ = now;
  if (from == hub_record_.get() || ran <= stall_ns_) return;
  try {
    options_.on_stall(
        from->id, from->label,
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::nanoseconds(ran)));
  } catch (...) {
    // A report must never break the switch it rides on.
  }
}

void FiberHub::set_label(std::string_view label) noexcept {
  if (running_ != nullptr) running_->label = label;
}

bool FiberHub::in_guard_page(const void* address) const noexcept {
  auto* r = running_;
  if (r == nullptr || r->guard_low == nullptr) return false;
  auto* a = static_cast<const char*>(address);
  static const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return a >= r->guard_low && a < r->guard_low + page;
}

FiberHub::~FiberHub() {
  destroying_ = true;  // joins on the unwinding stacks must not wait
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
  r->deadline = Clock::time_point::max();
  r->joiner = {};
  r->label = {};
  r->context = boost::context::fiber(
      std::allocator_arg, detail::PooledStack{stacks_.get(), r},
      [this, r](boost::context::fiber&& from) {
        on_resumed(std::move(from));
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
        if (r->joiner.record != nullptr) wake(r->joiner);
        // Boost frees this stack on top of the next context; that context's
        // on_resumed() then recycles the record.
        return std::move(pick_next(r)->context);
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
  if (ready_head_ == nullptr || max == 0) return 0;
  auto* const outer = detail::tl_running_hub;
  detail::tl_running_hub = this;
  batch_left_ = max;
  auto* const first = pick_next(hub_record_.get());
  // The fibers pass control among themselves; the last one of the batch
  // (or the first with nothing ready after it) switches back here.
  on_resumed(std::move(first->context).resume());
  running_ = nullptr;
  detail::tl_running_hub = outer;
  return max - batch_left_;
}

FiberRecord* FiberHub::pick_next(FiberRecord* from) noexcept {
  switched_from_ = from;
  if (stall_ns_ != 0) [[unlikely]]
    check_stall(from);
  if (batch_left_ == 0 || ready_head_ == nullptr) [[unlikely]] {
    running_ = nullptr;
    return hub_record_.get();
  }
  --batch_left_;
  auto* next = pop_ready();
  next->state = State::running;
  running_ = next;
  return next;
}

void FiberHub::on_resumed(boost::context::fiber&& continuation) noexcept {
  auto* from = switched_from_;
  if (from->state == State::done) [[unlikely]] {
    // `continuation` is empty: Boost has already freed that fiber's stack.
    --live_;
    release_record(from);
    return;
  }
  from->context = std::move(continuation);
}

void FiberHub::push_timer(const Timer& t) {
  if (timers_.size() >= compact_at_) compact_timers();
  timers_.push_back(t);
  std::push_heap(timers_.begin(), timers_.end(), std::greater<>{});
}

bool FiberHub::timer_live(const Timer& t) const noexcept {
  auto* r = t.token.record;
  if (r->id != t.token.fiber_id) return false;
  if (t.fiber_deadline) return r->deadline == t.deadline;
  return r->state == State::waiting && r->wait_seq == t.token.wait_seq;
}

void FiberHub::compact_timers() {
  std::erase_if(timers_, [this](const Timer& t) { return !timer_live(t); });
  std::make_heap(timers_.begin(), timers_.end(), std::greater<>{});
  compact_at_ = std::max<std::size_t>(1024, 2 * timers_.size());
}

std::size_t FiberHub::fire_timers(Clock::time_point now) {
  std::size_t n = 0;
  while (!timers_.empty() && timers_.front().deadline <= now) {
    std::pop_heap(timers_.begin(), timers_.end(), std::greater<>{});
    Timer t = timers_.back();
    timers_.pop_back();
    if (!timer_live(t)) continue;  // woken otherwise since: a stale entry
    auto* r = t.token.record;
    // A fiber deadline interrupts only an interruptible wait; otherwise the
    // fiber's next suspend() sees the deadline passed and throws.
    if (r->state != State::waiting || (t.fiber_deadline && r->uninterruptible)) continue;
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
  return timers_.front().deadline;
}

FiberHub* FiberHub::current() noexcept { return detail::tl_running_hub; }

FiberRef FiberHub::self() const noexcept { return {running_, running_ ? running_->id : 0}; }

void FiberHub::switch_out(FiberRecord* from) {
  assert(from != nullptr && "a hub wait called outside a fiber");
  auto* next = pick_next(from);
  if (next == from) return;  // it was the only ready fiber: no switch at all
  // Whoever switches back to `from` has already made it running_.
  on_resumed(std::move(next->context).resume());
}

void FiberHub::yield() {
  auto* r = running_;
  r->state = State::ready;
  push_ready(r);
  switch_out(r);
  if (r->cancelled) [[unlikely]]
    throw FiberCancelled{};
}

WaitToken FiberHub::prepare_wait() noexcept {
  auto* r = running_;
  return {r, r->id, ++r->wait_seq};
}

bool FiberHub::suspend_impl(WaitToken token, std::optional<Clock::time_point> deadline) {
  auto* r = running_;
  assert(token.record == r && token.wait_seq == r->wait_seq);
  if (deadline) push_timer(Timer{*deadline, token, false});
  r->state = State::waiting;
  r->woken = false;
  switch_out(r);
  return r->woken;
}

bool FiberHub::suspend(WaitToken token, std::optional<Clock::time_point> deadline) {
  auto* r = running_;
  if (r->cancelled) [[unlikely]]
    throw FiberCancelled{};
  const bool has_deadline = r->deadline != Clock::time_point::max();
  if (has_deadline) {
    if (r->deadline <= Clock::now()) throw DeadlineExceeded{};
    // The fiber's deadline has a timer of its own (set_deadline): a wait
    // needs one only when it ends sooner.
    if (deadline && *deadline >= r->deadline) deadline.reset();
  }
  bool woken = suspend_impl(token, deadline);
  if (r->cancelled) [[unlikely]]
    throw FiberCancelled{};
  if (!woken && has_deadline && r->deadline <= Clock::now()) throw DeadlineExceeded{};
  return woken;
}

bool FiberHub::suspend_uninterruptible(WaitToken token, std::optional<Clock::time_point> deadline) {
  auto* r = running_;
  r->uninterruptible = true;  // cancel() marks the fiber but leaves this wait alone
  bool woken = suspend_impl(token, deadline);
  r->uninterruptible = false;
  return woken;
}

void FiberHub::set_deadline(FiberRef fiber, Clock::time_point deadline) {
  auto* r = fiber.record;
  if (r == nullptr || r->id != fiber.fiber_id) return;
  r->deadline = deadline;
  if (deadline != Clock::time_point::max()) push_timer(Timer{deadline, {r, r->id, 0}, true});
}

Clock::time_point FiberHub::deadline() const noexcept {
  return running_ != nullptr ? running_->deadline : Clock::time_point::max();
}

FiberRef FiberHub::spawn_child(std::function<void()> fn) {
  auto d = deadline();
  auto ref = spawn(std::move(fn));
  set_deadline(ref, d);
  return ref;
}

bool FiberHub::finished(FiberRef fiber) const noexcept {
  auto* r = fiber.record;
  return r == nullptr || r->id != fiber.fiber_id || r->state == State::done ||
         r->state == State::idle;
}

void FiberHub::join(FiberRef fiber) {
  if (destroying_) return;
  while (!finished(fiber)) {
    auto token = prepare_wait();
    fiber.record->joiner = token;
    suspend_uninterruptible(token);
  }
}

bool FiberHub::cancel(FiberRef fiber) noexcept {
  auto* r = fiber.record;
  if (r == nullptr || r->id != fiber.fiber_id || r->state == State::done || r->state == State::idle)
    return false;
  r->cancelled = true;
  if (r->state == State::waiting && !r->uninterruptible) {
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
Clock::time_point deadline() {
  auto* h = FiberHub::current();
  return h != nullptr ? h->deadline() : Clock::time_point::max();
}
}  // namespace this_fiber

}  // namespace brubeck
