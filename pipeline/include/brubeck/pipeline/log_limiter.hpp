// Keeps one kind of warning from flooding the log: the first occurrence is
// logged, then at most one per interval, carrying how many were left out.
#pragma once

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <utility>

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

  // Logs the line when allow() lets it, with " (N more since the last
  // report)" after it; formats nothing otherwise.
  template <class... Args>
  void log(spdlog::level::level_enum level, fmt::format_string<Args...> format, Args&&... args) {
    std::uint64_t suppressed = 0;
    if (!allow(suppressed)) return;
    spdlog::log(level, "{} ({} more since the last report)",
                fmt::format(format, std::forward<Args>(args)...), suppressed);
  }
  template <class... Args>
  void warn(fmt::format_string<Args...> format, Args&&... args) {
    log(spdlog::level::warn, format, std::forward<Args>(args)...);
  }

 private:
  std::chrono::steady_clock::duration interval_;
  std::chrono::steady_clock::time_point last_{};
  std::uint64_t dropped_ = 0;
  bool logged_once_ = false;
};

}  // namespace brubeck::detail
