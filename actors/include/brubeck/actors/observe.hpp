// Seeing what the server does, request by request: what a shard knows once a
// reply is finished (Completion), and the one hook that hands it to both
// readers (RequestObserver): the access log (AccessLog: one line per
// request, written by a thread of its own so a shard never waits on a disk)
// and the shard's metrics (ShardMetrics: counters and per-route latency
// histograms the shard alone writes, summed over the shards when scraped and
// written out in Prometheus' text format by MetricsExposition).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace brubeck {

// One finished request, as the access log and the metrics see it. The views
// point into the request and live only during the hook's call.
struct Completion {
  static constexpr std::size_t kUnknownBytes = std::numeric_limits<std::size_t>::max();
  std::string_view method;
  std::string_view path;
  std::string_view query;
  std::string_view version;
  std::string_view conn_id;
  std::string_view remote;  // the client's address, as Mongrel2 saw it
  std::string_view referer;
  std::string_view user_agent;
  int status = 0;
  // Body bytes sent; kUnknownBytes for a streamed or deferred reply (the
  // handler sent it piece by piece).
  std::size_t bytes = kUnknownBytes;
  std::uint64_t micros = 0;  // from the frame's arrival to the reply
  std::size_t shard = 0;
  std::size_t route = std::numeric_limits<std::size_t>::max();  // in the route table; none
};

enum class AccessLogFormat { combined, json };

// "combined" or "json"; throws std::invalid_argument otherwise.
AccessLogFormat parse_access_log_format(std::string_view name);

// Appends one access-log line (without its newline) to `out`. Combined:
//   REMOTE - - [TIME] "METHOD PATH?QUERY VERSION" STATUS BYTES "REFERER" "AGENT" MICROS SHARD CONN
// the Apache/nginx format plus three fields. JSON: one object per line. Bytes
// a line cannot hold as they are (quotes, backslashes, control bytes, and in
// JSON bytes that are not UTF-8) are escaped: a request cannot forge a line
// or a field.
void format_access_line(AccessLogFormat format, const Completion& c,
                        std::chrono::system_clock::time_point now, std::string& out);

// The access log of an App: "-" (standard output) or a file, appended to.
// Lines are queued for one writer thread and never block the caller: when
// the queue is full the oldest queued line is dropped (and counted).
class AccessLog {
 public:
  // Throws std::runtime_error for a file it cannot open.
  AccessLog(std::string target, AccessLogFormat format, std::uint64_t sample_every);
  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  // Any thread.
  void write(std::string_view line);
  // Opens the file again by its name (after logrotate moved it): lines from
  // now on go to the new file. Standard output: nothing to do. Any thread.
  void reopen();
  // Asks the writer thread to flush what it wrote; returns at once.
  void flush();
  // Lines dropped because the writer fell behind.
  std::uint64_t dropped() const;

  AccessLogFormat format() const noexcept { return format_; }
  // One request in this many is logged (1: all; 0: none).
  std::uint64_t sample_every() const noexcept { return sample_every_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  AccessLogFormat format_;
  std::uint64_t sample_every_;
};

// Upper bounds of the latency histograms' buckets, in microseconds (+Inf is
// implied).
inline constexpr std::array<std::uint64_t, 15> kLatencyBucketsUs = {
    100,    250,     500,     1'000,   2'500,     5'000,     10'000,    25'000,
    50'000, 100'000, 250'000, 500'000, 1'000'000, 2'500'000, 10'000'000};

// A shard's request metrics. Written only by its shard (relaxed atomics, no
// contention), read by a scrape from any thread.
class ShardMetrics {
 public:
  // `routes`: the size of the shard's route table; one more histogram holds
  // requests no route took (404s, refusals).
  explicit ShardMetrics(std::size_t routes);

  void record(std::size_t route, int status, std::uint64_t micros) noexcept;

  struct Histogram {
    std::array<std::atomic<std::uint64_t>, kLatencyBucketsUs.size() + 1>
        buckets{};  // not cumulative
    std::atomic<std::uint64_t> sum_us{0};
  };
  // 1xx..5xx at [1]..[5]; anything else at [0].
  std::array<std::atomic<std::uint64_t>, 6> by_class{};
  std::size_t histograms() const noexcept { return count_; }
  // Route `i` (histograms() - 1: no route).
  const Histogram& histogram(std::size_t i) const noexcept { return hist_[i]; }

 private:
  std::size_t count_;
  std::unique_ptr<Histogram[]> hist_;
};

// The shard's one per-request completion point: every finished reply goes
// through completed(), which feeds the metrics and (sampled) the access log.
// Inactive (neither configured) it costs its caller one branch.
class RequestObserver {
 public:
  RequestObserver() = default;
  RequestObserver(std::shared_ptr<AccessLog> log, ShardMetrics* metrics)
      : log_(std::move(log)), metrics_(metrics) {}

  bool active() const noexcept { return log_ != nullptr || metrics_ != nullptr; }
  // Some request will be logged: the hook needs every field.
  bool logs() const noexcept { return log_ != nullptr && log_->sample_every() != 0; }
  void completed(const Completion& c);

 private:
  std::shared_ptr<AccessLog> log_;
  ShardMetrics* metrics_ = nullptr;
  std::uint64_t until_logged_ = 0;  // requests to skip before the next logged one
  std::string line_;                // reused
};

// Prometheus' text exposition format (version 0.0.4), written by
// prometheus-cpp's serializer: samples are added by family name (HELP and
// TYPE given once, at the family's first sample), then text() writes them
// all. Label values are escaped by the serializer.
class MetricsExposition {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;

  void counter(const std::string& name, const std::string& help, Labels labels, double value);
  void gauge(const std::string& name, const std::string& help, Labels labels, double value);
  // `buckets`: (upper bound, cumulative count) pairs in increasing order;
  // the +Inf bucket (= count) is added here.
  void histogram(const std::string& name, const std::string& help, Labels labels,
                 const std::vector<std::pair<double, std::uint64_t>>& buckets, double sum,
                 std::uint64_t count);
  std::string text() const;

 private:
  struct Families;
  std::shared_ptr<Families> families_;
  Families& families();
};

// The content type of MetricsExposition::text().
inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace brubeck
