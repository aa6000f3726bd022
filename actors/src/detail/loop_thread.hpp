// Starting a thread that owns an event loop: start-up (sockets, actor,
// routes) runs on the new thread, and its outcome, or its exception, comes
// back to the caller before the caller goes on.
#pragma once

#include <future>
#include <thread>

namespace brubeck::detail {

// `body(started)` must fulfil `started` once set up (or fail it), then loop.
template <class Body>
void start_loop_thread(std::thread& thread, Body body) {
  std::promise<void> started;
  auto ready = started.get_future();
  thread = std::thread([&started, body]() mutable { body(started); });
  try {
    ready.get();
  } catch (...) {
    thread.join();
    throw;
  }
}

}  // namespace brubeck::detail
