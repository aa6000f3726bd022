#include "brubeck/actors/observe.hpp"

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>
#include <spdlog/async.h>
#include <spdlog/async_logger.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <stdexcept>

namespace brubeck {

AccessLogFormat parse_access_log_format(std::string_view name) {
  if (name == "combined") return AccessLogFormat::combined;
  if (name == "json") return AccessLogFormat::json;
  throw std::invalid_argument("access log format must be combined or json, not '" +
                              std::string(name) + "'");
}

namespace {

constexpr char kHex[] = "0123456789abcdef";

void append_hex_escape(std::string& out, unsigned char b) {
  out += "\\x";
  out += kHex[b >> 4];
  out += kHex[b & 15];
}

// Printable ASCII but '"' and '\': copied as is, a run at a time.
bool plain_byte(unsigned char b) { return b >= 0x20 && b < 0x7f && b != '"' && b != '\\'; }

std::size_t plain_run(std::string_view s, std::size_t i) {
  while (i < s.size() && plain_byte(static_cast<unsigned char>(s[i]))) ++i;
  return i;
}

// As Apache's log_escape: '"' and '\' with a backslash, bytes outside
// printable ASCII as \xHH. Empty: "-".
void append_combined_field(std::string& out, std::string_view s) {
  if (s.empty()) {
    out += '-';
    return;
  }
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t j = plain_run(s, i);
    out.append(s.data() + i, j - i);
    if (j == s.size()) return;
    const auto b = static_cast<unsigned char>(s[j]);
    if (b == '"' || b == '\\') {
      out += '\\';
      out += static_cast<char>(b);
    } else {
      append_hex_escape(out, b);
    }
    i = j + 1;
  }
}

// The length of the valid UTF-8 sequence at s[i], or 0.
std::size_t utf8_length(std::string_view s, std::size_t i) {
  const auto b = static_cast<unsigned char>(s[i]);
  std::size_t n;
  std::uint32_t cp;
  if (b >= 0xc2 && b <= 0xdf) {
    n = 2;
    cp = b & 0x1f;
  } else if (b >= 0xe0 && b <= 0xef) {
    n = 3;
    cp = b & 0x0f;
  } else if (b >= 0xf0 && b <= 0xf4) {
    n = 4;
    cp = b & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    const auto c = static_cast<unsigned char>(s[i + k]);
    if ((c & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (c & 0x3f);
  }
  // Overlong forms, surrogates and code points past U+10FFFF are not UTF-8.
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
      (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return n;
}

// A JSON string. Bytes that are not UTF-8 become the text \xHH (a JSON
// string holds only Unicode).
void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    if (const std::size_t j = plain_run(s, i); j > i) {
      out.append(s.data() + i, j - i);
      i = j;
      continue;
    }
    const auto b = static_cast<unsigned char>(s[i]);
    if (b == '"' || b == '\\') {
      out += '\\';
      out += static_cast<char>(b);
    } else if (b < 0x20) {
      out += "\\u00";
      out += kHex[b >> 4];
      out += kHex[b & 15];
    } else if (b < 0x80) {
      out += static_cast<char>(b);
    } else if (auto n = utf8_length(s, i)) {
      out.append(s.substr(i, n));
      i += n;
      continue;
    } else {
      out += '\\';  // the JSON escape of the backslash of \xHH
      append_hex_escape(out, b);
    }
    ++i;
  }
  out += '"';
}

void append_number(std::string& out, std::uint64_t n) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  (void)ec;  // 24 digits always suffice
  out.append(buf, end);
}

// The time as text, formatted once a second per thread (gmtime_r and
// strftime cost more than the rest of a line).
struct CachedTime {
  std::time_t second = -1;
  char text[40] = {};
};

std::string_view when_text(CachedTime& cache, std::chrono::system_clock::time_point now,
                           const char* format) {
  const auto t = std::chrono::system_clock::to_time_t(now);
  if (t != cache.second) {
    std::tm tm{};
    gmtime_r(&t, &tm);
    if (std::strftime(cache.text, sizeof cache.text, format, &tm) == 0) cache.text[0] = '\0';
    cache.second = t;
  }
  return cache.text;
}

}  // namespace

void format_access_line(AccessLogFormat format, const Completion& c,
                        std::chrono::system_clock::time_point now, std::string& out) {
  if (format == AccessLogFormat::combined) {
    thread_local CachedTime cache;
    append_combined_field(out, c.remote);
    out += " - - [";
    out += when_text(cache, now, "%d/%b/%Y:%H:%M:%S +0000");
    out += "] \"";
    append_combined_field(out, c.method);
    out += ' ';
    append_combined_field(out, c.path);
    if (!c.query.empty()) {
      out += '?';
      append_combined_field(out, c.query);
    }
    if (!c.version.empty()) {
      out += ' ';
      append_combined_field(out, c.version);
    }
    out += "\" ";
    append_number(out, static_cast<std::uint64_t>(c.status));
    out += ' ';
    if (c.bytes == Completion::kUnknownBytes)
      out += '-';
    else
      append_number(out, c.bytes);
    out += " \"";
    append_combined_field(out, c.referer);
    out += "\" \"";
    append_combined_field(out, c.user_agent);
    out += "\" ";
    append_number(out, c.micros);
    out += ' ';
    append_number(out, c.shard);
    out += ' ';
    append_combined_field(out, c.conn_id);
    return;
  }
  thread_local CachedTime cache;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) %
                  std::chrono::seconds(1);
  out += "{\"time\":\"";
  out += when_text(cache, now, "%Y-%m-%dT%H:%M:%S");
  const auto millis = static_cast<int>(ms.count());
  out += '.';
  out += static_cast<char>('0' + millis / 100);
  out += static_cast<char>('0' + millis / 10 % 10);
  out += static_cast<char>('0' + millis % 10);
  out += "Z\",\"remote\":";
  append_json_string(out, c.remote);
  out += ",\"method\":";
  append_json_string(out, c.method);
  out += ",\"path\":";
  append_json_string(out, c.path);
  out += ",\"query\":";
  append_json_string(out, c.query);
  out += ",\"version\":";
  append_json_string(out, c.version);
  out += ",\"status\":";
  append_number(out, static_cast<std::uint64_t>(c.status));
  out += ",\"bytes\":";
  if (c.bytes == Completion::kUnknownBytes)
    out += "null";
  else
    append_number(out, c.bytes);
  out += ",\"micros\":";
  append_number(out, c.micros);
  out += ",\"shard\":";
  append_number(out, c.shard);
  out += ",\"conn\":";
  append_json_string(out, c.conn_id);
  out += ",\"referer\":";
  append_json_string(out, c.referer);
  out += ",\"user_agent\":";
  append_json_string(out, c.user_agent);
  out += '}';
}

namespace {

// Writes each message's text and a newline, nothing else, to standard
// output or to a file it can open again by name.
class LineSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit LineSink(std::string path) : path_(std::move(path)) {
    if (path_ == "-")
      file_ = stdout;
    else
      file_ = open_file();
  }
  ~LineSink() override {
    if (file_ != nullptr && file_ != stdout) std::fclose(file_);
  }

  void reopen() {
    if (path_ == "-") return;
    std::FILE* fresh = open_file();
    std::lock_guard lock(mutex_);
    std::fclose(file_);
    file_ = fresh;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::fwrite(msg.payload.data(), 1, msg.payload.size(), file_);
    std::fputc('\n', file_);
  }
  void flush_() override { std::fflush(file_); }

 private:
  std::FILE* open_file() {
    std::FILE* f = std::fopen(path_.c_str(), "ae");
    if (f == nullptr)
      throw std::runtime_error("cannot open access log " + path_ + ": " + std::strerror(errno));
    return f;
  }

  std::string path_;
  std::FILE* file_ = nullptr;
};

}  // namespace

struct AccessLog::Impl {
  std::shared_ptr<LineSink> sink;
  std::shared_ptr<spdlog::details::thread_pool> pool;
  std::shared_ptr<spdlog::async_logger> logger;
};

AccessLog::AccessLog(std::string target, AccessLogFormat format, std::uint64_t sample_every)
    : impl_(std::make_unique<Impl>()), format_(format), sample_every_(sample_every) {
  impl_->sink = std::make_shared<LineSink>(std::move(target));
  // 64 Ki lines in the queue: seconds of a busy server, a few MB.
  impl_->pool = std::make_shared<spdlog::details::thread_pool>(64 * 1024, 1);
  // Not registered with spdlog: each App has its own, by no global name.
  impl_->logger = std::make_shared<spdlog::async_logger>(
      "access", impl_->sink, impl_->pool, spdlog::async_overflow_policy::overrun_oldest);
  impl_->logger->set_level(spdlog::level::info);
}

AccessLog::~AccessLog() {
  impl_->logger->flush();
  // The pool first: it writes what is queued, then joins its thread. Queued
  // lines hold the logger; were the logger released first, the pool's
  // thread could free it inside the uninstrumented libspdlog, a hand-off
  // ThreadSanitizer cannot see. After the join the last release is ours.
  impl_->pool.reset();
  impl_->logger.reset();
}

void AccessLog::write(std::string_view line) {
  impl_->logger->log(spdlog::level::info, spdlog::string_view_t(line.data(), line.size()));
}

void AccessLog::reopen() {
  // Lines already queued may land in either file; none is lost.
  impl_->sink->reopen();
}

void AccessLog::flush() { impl_->logger->flush(); }

std::uint64_t AccessLog::dropped() const { return impl_->pool->overrun_counter(); }

ShardMetrics::ShardMetrics(std::size_t routes)
    : count_(routes + 1), hist_(std::make_unique<Histogram[]>(routes + 1)) {}

void ShardMetrics::record(std::size_t route, int status, std::uint64_t micros) noexcept {
  const auto cls = status >= 100 && status < 600 ? static_cast<std::size_t>(status / 100) : 0;
  by_class[cls].fetch_add(1, std::memory_order_relaxed);
  auto& h = hist_[route < count_ ? route : count_ - 1];
  std::size_t b = 0;
  while (b < kLatencyBucketsUs.size() && micros > kLatencyBucketsUs[b]) ++b;
  h.buckets[b].fetch_add(1, std::memory_order_relaxed);
  h.sum_us.fetch_add(micros, std::memory_order_relaxed);
}

void RequestObserver::completed(const Completion& c) {
  if (metrics_ != nullptr) metrics_->record(c.route, c.status, c.micros);
  if (log_ == nullptr || log_->sample_every() == 0) return;
  if (until_logged_ > 0) {
    --until_logged_;
    return;
  }
  until_logged_ = log_->sample_every() - 1;
  line_.clear();
  format_access_line(log_->format(), c, std::chrono::system_clock::now(), line_);
  log_->write(line_);
}

struct MetricsExposition::Families {
  std::vector<prometheus::MetricFamily> list;
  std::map<std::string, std::size_t, std::less<>> index;
};

MetricsExposition::Families& MetricsExposition::families() {
  if (!families_) families_ = std::make_shared<Families>();
  return *families_;
}

namespace {

prometheus::ClientMetric& add_sample(std::vector<prometheus::MetricFamily>& list,
                                     std::map<std::string, std::size_t, std::less<>>& index,
                                     const std::string& name, const std::string& help,
                                     prometheus::MetricType type,
                                     MetricsExposition::Labels labels) {
  auto [it, fresh] = index.emplace(name, list.size());
  if (fresh) list.push_back({name, help, type, {}});
  auto& family = list[it->second];
  if (family.type != type)
    throw std::logic_error("metric " + name + " added with two different types");
  auto& metric = family.metric.emplace_back();
  for (auto& [k, v] : labels) metric.label.push_back({std::move(k), std::move(v)});
  return metric;
}

}  // namespace

void MetricsExposition::counter(const std::string& name, const std::string& help, Labels labels,
                                double value) {
  auto& f = families();
  add_sample(f.list, f.index, name, help, prometheus::MetricType::Counter, std::move(labels))
      .counter.value = value;
}

void MetricsExposition::gauge(const std::string& name, const std::string& help, Labels labels,
                              double value) {
  auto& f = families();
  add_sample(f.list, f.index, name, help, prometheus::MetricType::Gauge, std::move(labels))
      .gauge.value = value;
}

void MetricsExposition::histogram(const std::string& name, const std::string& help, Labels labels,
                                  const std::vector<std::pair<double, std::uint64_t>>& buckets,
                                  double sum, std::uint64_t count) {
  auto& f = families();
  auto& h =
      add_sample(f.list, f.index, name, help, prometheus::MetricType::Histogram, std::move(labels))
          .histogram;
  h.sample_count = count;
  h.sample_sum = sum;
  for (const auto& [bound, cumulative] : buckets) h.bucket.push_back({cumulative, bound});
  h.bucket.push_back({count, std::numeric_limits<double>::infinity()});
}

std::string MetricsExposition::text() const {
  if (!families_) return {};
  return prometheus::TextSerializer().Serialize(families_->list);
}

}  // namespace brubeck
