// Keeps one kind of warning from flooding the log: the first occurrence is
// logged, then at most one per interval, carrying how many were left out.
#pragma once

#include <chrono>
#include <cstdint>

namespace brubeck::detail {

class LogLimiter {
 public:
  explicit LogLimiter(std::chrono::steady_clock::duration interval = std::chrono::seconds(1))
      : interval_(interval) {}

  // True when this occurrence should be logged; `suppressed` then holds how
  // many were dropped since the last one logged.
  bool allow(std::uint64_t& suppressed) {
    auto now = std::chrono::steady_clock::now();
    if (logged_once_ && now - last_ < interval_) {
      ++dropped_;
      return false;
    }
    logged_once_ = true;
    last_ = now;
    suppressed = dropped_;
    dropped_ = 0;
    return true;
  }

 private:
  std::chrono::steady_clock::duration interval_;
  std::chrono::steady_clock::time_point last_{};
  std::uint64_t dropped_ = 0;
  bool logged_once_ = false;
};

}  // namespace brubeck::detail
