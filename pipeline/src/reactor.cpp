#include "brubeck/pipeline/reactor.hpp"

#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace brubeck {

namespace {
[[noreturn]] void throw_errno(const char* what) {
  throw std::system_error(errno, std::generic_category(), what);
}
thread_local Reactor* tl_current_reactor = nullptr;
}  // namespace

Reactor* Reactor::current() noexcept { return tl_current_reactor; }

void Reactor::update_fd_wait(int fd, FdWaiters& w) {
  std::uint32_t want = (w.in.record != nullptr ? EPOLLIN | EPOLLRDHUP : 0u) |
                       (w.out.record != nullptr ? EPOLLOUT : 0u);
  if (want == w.registered) return;
  epoll_event ev{};
  ev.events = want;
  ev.data.fd = fd;
  int op = w.registered == 0 ? EPOLL_CTL_ADD : want == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
  if (::epoll_ctl(epoll_fd_, op, fd, &ev) != 0) throw_errno("epoll_ctl (fd wait)");
  w.registered = want;
}

bool Reactor::wait_fd(int fd, std::uint32_t events, std::optional<Clock::time_point> deadline) {
  if (hub_ == nullptr || FiberHub::current() != hub_)
    throw std::logic_error("brubeck: wait_fd called outside a fiber of this reactor");
  if (fds_.count(fd) != 0) throw std::logic_error("brubeck: wait_fd on an fd owned by add_fd");
  auto& w = fd_waits_[fd];
  bool in = (events & EPOLLIN) != 0;
  bool out = (events & EPOLLOUT) != 0;
  if ((in && w.in.record != nullptr) || (out && w.out.record != nullptr))
    throw std::logic_error("brubeck: two fibers wait on the same fd and direction");
  auto token = hub_->prepare_wait();
  if (in) w.in = token;
  if (out) w.out = token;
  struct Done {
    Reactor* self;
    int fd;
    bool in, out;
    ~Done() {
      auto it = self->fd_waits_.find(fd);
      if (it == self->fd_waits_.end()) return;
      if (in) it->second.in = {};
      if (out) it->second.out = {};
      try {
        self->update_fd_wait(fd, it->second);
      } catch (const std::exception&) {
        // The fd was closed under us: epoll forgot it already.
        it->second.registered = 0;
      }
      if (it->second.registered == 0) self->fd_waits_.erase(it);
    }
  } done{this, fd, in, out};
  update_fd_wait(fd, w);
  return hub_->suspend(token, deadline);
}

void Reactor::on_fd_wait_ready(int fd, std::uint32_t events) noexcept {
  auto it = fd_waits_.find(fd);
  if (it == fd_waits_.end()) return;
  constexpr std::uint32_t kBroken = EPOLLHUP | EPOLLERR;
  if ((events & (EPOLLIN | EPOLLRDHUP | kBroken)) != 0 && it->second.in.record != nullptr)
    hub_->wake(it->second.in);
  if ((events & (EPOLLOUT | kBroken)) != 0 && it->second.out.record != nullptr)
    hub_->wake(it->second.out);
}

bool ReactorAnchor::post(std::unique_ptr<Task> task) noexcept {
  std::lock_guard lock(mutex_);
  if (reactor_ == nullptr) return false;
  reactor_->post(std::move(task));
  return true;
}

Reactor::Reactor(FiberHub* hub, ReactorOptions options)
    : hub_(hub), options_(options), anchor_(std::make_shared<ReactorAnchor>(this)) {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) throw_errno("epoll_create1");
  event_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (event_fd_ < 0) {
    ::close(epoll_fd_);
    throw_errno("eventfd");
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = event_fd_;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, event_fd_, &ev) != 0) throw_errno("epoll_ctl");
}

Reactor::~Reactor() {
  {
    std::lock_guard lock(anchor_->mutex_);
    anchor_->reactor_ = nullptr;
  }
  // Tasks never run are destroyed, so whatever they own is released.
  for (auto* list : {backlog_, inbox_.exchange(nullptr)}) {
    for (auto* t = list; t != nullptr;) {
      auto* next = t->next_;
      delete t;
      t = next;
    }
  }
  ::close(event_fd_);
  ::close(epoll_fd_);
}

void Reactor::post(std::unique_ptr<Task> task) noexcept {
  auto* t = task.release();
  auto* head = inbox_.load(std::memory_order_relaxed);
  do {
    t->next_ = head;
  } while (!inbox_.compare_exchange_weak(head, t, std::memory_order_seq_cst));
  // Dekker pairing with run(): it sets sleeping_ and then re-checks the inbox.
  if (head == nullptr && sleeping_.load(std::memory_order_seq_cst)) wake();
}

void Reactor::wake() noexcept {
  std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(event_fd_, &one, sizeof one);
}

void Reactor::stop() noexcept {
  stop_.store(true, std::memory_order_release);
  wake();
}

bool Reactor::drain_inbox() {
  if (backlog_ == nullptr) {
    auto* list = inbox_.exchange(nullptr, std::memory_order_acquire);
    if (list == nullptr) return false;
    // The inbox is a stack: reverse it to run tasks in the order they came.
    while (list != nullptr) {
      auto* next = list->next_;
      list->next_ = backlog_;
      backlog_ = list;
      list = next;
    }
  }
  for (std::size_t n = 0; n < options_.task_batch && backlog_ != nullptr; ++n) {
    std::unique_ptr<Task> t{backlog_};
    backlog_ = backlog_->next_;
    try {
      t->run();
    } catch (const std::exception& e) {
      spdlog::error("reactor task failed: {}", e.what());
    } catch (...) {
      spdlog::error("reactor task failed with a non-standard exception");
    }
  }
  return true;
}

void Reactor::add_fd(int fd, std::uint32_t events, std::function<void(std::uint32_t)> on_ready) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) throw_errno("epoll_ctl add");
  fds_[fd] = std::move(on_ready);
}

void Reactor::modify_fd(int fd, std::uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev) != 0) throw_errno("epoll_ctl mod");
}

void Reactor::remove_fd(int fd) {
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  fds_.erase(fd);
}

void Reactor::add_poll_hook(std::function<bool()> hook) { poll_hooks_.push_back(std::move(hook)); }

void Reactor::run() { run_until({}); }

void Reactor::run_until(const std::function<bool()>& done) {
  constexpr int kMaxEvents = 64;
  epoll_event events[kMaxEvents];
  auto idle_since = Clock::now();
  auto* const outer = tl_current_reactor;
  tl_current_reactor = this;
  struct Restore {
    Reactor* outer;
    ~Restore() { tl_current_reactor = outer; }
  } restore{outer};
  while (!stop_.load(std::memory_order_acquire)) {
    // `worked`: this pass did something (it keeps a busy-poll going);
    // `pending`: something is ready now, so the loop must not sleep. A pass
    // that worked but left nothing pending sleeps at once: the non-blocking
    // epoll_wait a "busy" pass used to add cost a system call per wake-up.
    bool worked = drain_inbox();
    bool pending = backlog_ != nullptr;
    for (auto& hook : poll_hooks_) pending |= hook();
    if (hub_ != nullptr) {
      worked |= hub_->fire_timers() > 0;
      worked |= hub_->run_ready(options_.fiber_batch) > 0;
      pending |= hub_->has_ready();
    }
    if (done && done()) break;

    int timeout_ms = 0;
    auto now = Clock::now();
    if (worked || pending) idle_since = now;
    if (!pending && now - idle_since >= options_.idle_poll) {
      timeout_ms = -1;
      if (hub_ != nullptr) {
        if (auto deadline = hub_->next_deadline()) {
          auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - now).count();
          timeout_ms = static_cast<int>(std::clamp<long long>(left, 0, 60'000));
        }
      }
    }
    if (timeout_ms != 0) {
      sleeping_.store(true, std::memory_order_seq_cst);
      if (inbox_.load(std::memory_order_seq_cst) != nullptr ||
          stop_.load(std::memory_order_acquire))
        timeout_ms = 0;
    }
    int n = ::epoll_wait(epoll_fd_, events, kMaxEvents, timeout_ms);
    sleeping_.store(false, std::memory_order_relaxed);
    if (n < 0 && errno != EINTR) throw_errno("epoll_wait");
    // What the callbacks woke runs on the next pass, which counts as work.
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == event_fd_) {
        std::uint64_t count;
        [[maybe_unused]] auto r = ::read(event_fd_, &count, sizeof count);
        continue;
      }
      auto it = fds_.find(fd);
      if (it == fds_.end()) {
        on_fd_wait_ready(fd, events[i].events);
        continue;
      }
      auto cb = it->second;  // the callback may remove its own fd
      try {
        cb(events[i].events);
      } catch (const std::exception& e) {
        spdlog::error("fd {} callback failed: {}", fd, e.what());
      }
    }
  }
}

}  // namespace brubeck
