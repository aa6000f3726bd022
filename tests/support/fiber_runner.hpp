// Runs test code as a fiber of a real Reactor on the calling thread, the way
// a shard runs handler code: wait_fd, offload, timers and the drivers all
// work inside. Returns when the fiber ends, rethrowing what escaped it; a
// watchdog stops the loop (and fails the test) after `limit`.
#pragma once

#include <chrono>
#include <functional>

namespace brubeck::testing {

void run_fiber(const std::function<void()>& body,
               std::chrono::milliseconds limit = std::chrono::seconds(60));

}  // namespace brubeck::testing
