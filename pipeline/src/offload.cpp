#include "brubeck/pipeline/offload.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace brubeck {

namespace {
std::mutex g_default_mutex;
std::size_t g_default_threads = 0;
std::size_t g_default_queue = 1024;
}  // namespace

OffloadPool::OffloadPool(std::size_t threads, std::size_t max_queued)
    : max_queued_(std::max<std::size_t>(max_queued, 1)) {
  threads = std::max<std::size_t>(threads, 1);
  threads_.reserve(threads);
  for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { work(); });
}

OffloadPool::~OffloadPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

std::size_t OffloadPool::queued() {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

bool OffloadPool::try_submit(std::function<void()> job) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || queue_.size() >= max_queued_) return false;
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

void OffloadPool::work() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    try {
      job();
    } catch (const std::exception& e) {
      spdlog::error("offload job failed: {}", e.what());
    } catch (...) {
      spdlog::error("offload job failed with a non-standard exception");
    }
  }
}

OffloadPool& OffloadPool::default_pool() {
  static OffloadPool pool{[] {
                            std::lock_guard lock(g_default_mutex);
                            return g_default_threads != 0
                                       ? g_default_threads
                                       : 4 * std::max(1u, std::thread::hardware_concurrency());
                          }(),
                          [] {
                            std::lock_guard lock(g_default_mutex);
                            return g_default_queue;
                          }()};
  return pool;
}

void OffloadPool::configure_default(std::size_t threads, std::size_t max_queued) {
  std::lock_guard lock(g_default_mutex);
  g_default_threads = threads;
  g_default_queue = max_queued;
}

namespace detail {
bool offload_and_wait(OffloadPool& pool,
                      const std::function<void(std::function<void()> finish)>& job,
                      std::optional<Clock::time_point> deadline, std::stop_source stop) {
  auto* reactor = Reactor::current();
  auto* hub = FiberHub::current();
  if (reactor == nullptr || hub == nullptr || reactor->hub() != hub)
    throw std::logic_error("brubeck::offload called outside a fiber of a running reactor");
  auto token = hub->prepare_wait();
  // A job may finish after its fiber gave up and even after the shard has
  // stopped: the anchor drops the wake once the reactor is gone, and a late
  // wake that does arrive carries a stale token and is ignored.
  auto finish = [anchor = reactor->anchor(), hub, token] {
    anchor->post_fn([hub, token] { hub->wake(token); });
  };
  if (!pool.try_submit([job, finish] { job(finish); })) throw Unavailable("offload queue is full");
  // Whatever ends the wait early, the job is told; a stop requested after it
  // finished is harmless.
  struct StopUnlessFinished {
    std::stop_source& stop;
    bool finished = false;
    ~StopUnlessFinished() {
      if (!finished) stop.request_stop();
    }
  } guard{stop};
  guard.finished = hub->suspend(token, deadline);
  return guard.finished;
}
}  // namespace detail

}  // namespace brubeck
