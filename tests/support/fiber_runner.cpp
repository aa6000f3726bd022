#include "support/fiber_runner.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>

#include "brubeck/pipeline/fiber_hub.hpp"
#include "brubeck/pipeline/reactor.hpp"

namespace brubeck::testing {

void run_fiber(const std::function<void()>& body, std::chrono::milliseconds limit) {
  FiberHub hub;
  Reactor reactor(&hub);
  std::exception_ptr error;
  bool finished = false;
  hub.spawn([&] {
    try {
      body();
    } catch (...) {
      error = std::current_exception();
    }
    finished = true;
    reactor.stop();
  });
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  std::atomic<bool> fired{false};
  std::thread watchdog([&] {
    std::unique_lock lock(m);
    if (!cv.wait_for(lock, limit, [&] { return done; })) {
      fired = true;
      reactor.stop();
    }
  });
  reactor.run();
  {
    std::lock_guard lock(m);
    done = true;
  }
  cv.notify_all();
  watchdog.join();
  if (fired && !finished) ADD_FAILURE() << "run_fiber: the fiber did not finish within the limit";
  if (error) std::rethrow_exception(error);
}

}  // namespace brubeck::testing
