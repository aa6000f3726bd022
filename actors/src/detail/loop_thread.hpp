// Starting a thread that owns an event loop: start-up (sockets, actor,
// routes) runs on the new thread, and its outcome, or its exception, comes
// back to the caller before the caller goes on.
#pragma once

#include <future>
#include <thread>

namespace brubeck::detail {

// Runs `setup()` on the new thread; its result (the loop, owned by that
// thread) goes to `run`, which is called only once start() has returned.
// An exception from setup() is rethrown here, after the thread has ended.
template <class Setup, class Run>
void start_loop_thread(std::thread& thread, Setup setup, Run run) {
  std::promise<void> started;
  auto ready = started.get_future();
  thread = std::thread([&started, setup, run]() mutable {
    decltype(setup()) loop;
    try {
      loop = setup();
    } catch (...) {
      started.set_exception(std::current_exception());
      return;
    }
    started.set_value();  // `started` dies with start(): not touched again
    run(*loop);
  });
  try {
    ready.get();
  } catch (...) {
    thread.join();
    throw;
  }
}

}  // namespace brubeck::detail
