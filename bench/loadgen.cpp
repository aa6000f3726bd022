// A Mongrel2 stand-in load generator (issue #5): binds a PUSH and a SUB socket
// as Mongrel2 does, pushes browser-shaped request frames (~500 bytes of JSON
// headers, `GET /brubeck?name=x`, bench/captured_frame.hpp) and matches the replies by connection
// id. It measures a handler without Mongrel2's own ceiling.
//
//   bench_loadgen --push tcp://127.0.0.1:P --sub tcp://127.0.0.1:Q
//                 [--concurrency C | --rate R] [--duration S] [--warmup S]
//                 [--path /brubeck] [--query name=x] [--cpu-pid PID]...
//                 [--label NAME] [--connect-timeout S] [--expect TEXT]
//                 [--protocol json|tnetstring]
//
// Handlers connect to it exactly as to Mongrel2: send_spec = the PUSH
// endpoint, recv_spec = the SUB endpoint.
//
// Closed loop (default, --concurrency 64): C requests outstanding, conn ids
// 1..C, each reused as soon as its reply arrives. Open loop (--rate R): one
// request every 1/R s whatever the replies do, conn ids cycling over
// 1..--max-outstanding; latency counts from the scheduled send time (no
// coordinated omission), and a send that finds its id still outstanding is
// counted as `overload` and skipped.
//
// Phases: connect (probe frames until a reply comes back: a handler's PUB
// replies are lost until Mongrel2's SUB subscription reaches it, and the
// bound SUB only sends it while this process touches the socket), warm-up
// (--warmup s, not counted), the measured window (--duration s), then a
// bounded drain. Prints one JSON line on stdout: req/s and latencies of the
// 200 replies only (`requests`), `non_200` (answered with another status or
// an unexpected body: not served), `errors` (unreadable replies), latency
// p50/p90/p99/p99.9/max (log-linear histogram, ≤1.6% bucket error), and with
// --cpu-pid the CPU seconds (utime+stime, /proc/PID/stat) those processes
// used in the window, per request.
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>
#include <zmq.hpp>

#include "captured_frame.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using ns = std::chrono::nanoseconds;

// Latencies in ns, 64 linear sub-buckets per power of two.
class Histogram {
 public:
  static constexpr int kSub = 6;  // 2^6 sub-buckets
  void add(std::uint64_t v) {
    ++counts_[index(v)];
    ++n_;
    sum_ += v;
    max_ = std::max(max_, v);
  }
  std::uint64_t count() const { return n_; }
  double mean() const { return n_ ? static_cast<double>(sum_) / static_cast<double>(n_) : 0; }
  std::uint64_t max() const { return max_; }
  // The value below which a fraction q of the samples lie (bucket midpoint).
  std::uint64_t quantile(double q) const {
    if (n_ == 0) return 0;
    auto rank = static_cast<std::uint64_t>(q * static_cast<double>(n_));
    if (rank >= n_) rank = n_ - 1;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen > rank) return std::min(midpoint(i), max_);
    }
    return max_;
  }

 private:
  static std::size_t index(std::uint64_t v) {
    if (v < (1u << kSub)) return static_cast<std::size_t>(v);
    int e = 63 - std::countl_zero(v);  // e >= kSub
    auto sub = (v >> (e - kSub)) & ((1u << kSub) - 1);
    return static_cast<std::size_t>((e - kSub + 1) << kSub) + sub;
  }
  static std::uint64_t midpoint(std::size_t i) {
    if (i < (1u << kSub)) return i;
    int e = static_cast<int>(i >> kSub) + kSub - 1;
    std::uint64_t sub = i & ((1u << kSub) - 1);
    std::uint64_t low = (std::uint64_t{1} << e) + (sub << (e - kSub));
    return low + (std::uint64_t{1} << (e - kSub)) / 2;
  }
  std::array<std::uint64_t, (64 - kSub + 1) << kSub> counts_{};
  std::uint64_t n_ = 0, sum_ = 0, max_ = 0;
};

// CPU ticks (utime + stime, every thread) of a process, or -1 if it is gone.
long long cpu_ticks(long pid) {
  std::ifstream in(pid == 0 ? std::string("/proc/self/stat")
                            : "/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return -1;
  auto close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  long long utime = 0, stime = 0;
  // After the comm: state is field 3; utime is 14 and stime 15.
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::atoll(field.c_str());
    if (i == 15) stime = std::atoll(field.c_str());
  }
  return utime + stime;
}

struct Options {
  std::string push, sub, label = "loadgen", path = "/brubeck", query = "name=x", expect;
  std::string sender = "f4c5e1a2-7b3d-4e8f-9a10-b2c3d4e5f607";
  unsigned concurrency = 64;
  double rate = 0;  // > 0: open loop
  double duration = 10, warmup = 2, connect_timeout = 15, drain = 2;
  unsigned max_outstanding = 65536;
  std::vector<long> cpu_pids;
  bool tnetstring = false;  // Mongrel2's protocol='tnetstring' header encoding
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "bench_loadgen: %s\n"
               "usage: bench_loadgen --push EP --sub EP [--concurrency C | --rate R]\n"
               "  [--duration S] [--warmup S] [--connect-timeout S] [--drain S]\n"
               "  [--path P] [--query Q] [--expect TEXT] [--sender UUID]\n"
               "  [--max-outstanding N] [--cpu-pid PID]... [--label NAME]\n"
               "  [--protocol json|tnetstring]\n",
               why);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage("missing value");
      return argv[++i];
    };
    auto number = [&]() {
      auto v = value();
      char* end = nullptr;
      double d = std::strtod(v.c_str(), &end);
      if (end == v.c_str() || *end != '\0' || d < 0) usage("bad number");
      return d;
    };
    if (a == "--push")
      o.push = value();
    else if (a == "--sub")
      o.sub = value();
    else if (a == "--concurrency" || a == "-c")
      o.concurrency = static_cast<unsigned>(number());
    else if (a == "--rate")
      o.rate = number();
    else if (a == "--duration" || a == "-d")
      o.duration = number();
    else if (a == "--warmup")
      o.warmup = number();
    else if (a == "--connect-timeout")
      o.connect_timeout = number();
    else if (a == "--drain")
      o.drain = number();
    else if (a == "--path")
      o.path = value();
    else if (a == "--query")
      o.query = value();
    else if (a == "--expect")
      o.expect = value();
    else if (a == "--sender")
      o.sender = value();
    else if (a == "--label")
      o.label = value();
    else if (a == "--max-outstanding")
      o.max_outstanding = static_cast<unsigned>(number());
    else if (a == "--cpu-pid")
      o.cpu_pids.push_back(static_cast<long>(number()));
    else if (a == "--protocol") {
      auto p = value();
      if (p != "json" && p != "tnetstring") usage("--protocol is json or tnetstring");
      o.tnetstring = p == "tnetstring";
    } else
      usage(("unknown option " + std::string(a)).c_str());
  }
  if (o.push.empty() || o.sub.empty()) usage("--push and --sub are required");
  if (o.rate <= 0 && (o.concurrency == 0 || o.concurrency > 1000000))
    usage("--concurrency must be 1..1000000");
  if (o.max_outstanding == 0) usage("--max-outstanding must be positive");
  if (o.duration <= 0) usage("--duration must be positive");
  if (o.sender.empty() || o.sender.find(' ') != std::string::npos) usage("bad --sender");
  return o;
}

// "SENDER " | conn id | " PATH " | headers | "0:,"
struct FrameTemplate {
  std::string head, tail;
  FrameTemplate(const Options& o) {
    head = o.sender + " ";
    tail = " " + o.path + " " + brubeck::bench::captured_headers(o.path, o.query, o.tnetstring) +
           "0:,";
  }
  zmq::message_t make(std::uint64_t conn) const {
    char digits[24];
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, conn);
    (void)ec;
    auto n = static_cast<std::size_t>(end - digits);
    zmq::message_t m(head.size() + n + tail.size());
    auto* p = static_cast<char*>(m.data());
    std::memcpy(p, head.data(), head.size());
    std::memcpy(p + head.size(), digits, n);
    std::memcpy(p + head.size() + n, tail.data(), tail.size());
    return m;
  }
};

struct Reply {
  std::string_view ids;  // space-separated
  std::string_view body;
};

// "SENDER LEN:ID ID..., BYTES"; false when it is not that shape.
bool parse_reply(std::string_view m, std::string_view sender, Reply& r) {
  if (m.size() <= sender.size() + 1 || m.substr(0, sender.size()) != sender ||
      m[sender.size()] != ' ')
    return false;
  m.remove_prefix(sender.size() + 1);
  auto colon = m.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon > 9) return false;
  std::size_t len = 0;
  auto [p, ec] = std::from_chars(m.data(), m.data() + colon, len);
  if (ec != std::errc() || p != m.data() + colon) return false;
  if (colon + 1 + len + 1 > m.size() || m[colon + 1 + len] != ',') return false;
  r.ids = m.substr(colon + 1, len);
  m.remove_prefix(colon + 1 + len + 1);
  if (!m.empty() && m[0] == ' ') m.remove_prefix(1);
  r.body = m;
  return true;
}

class LoadGen {
 public:
  explicit LoadGen(const Options& o)
      : o_(o), tmpl_(o), push_(ctx_, zmq::socket_type::push), sub_(ctx_, zmq::socket_type::sub) {
    push_.set(zmq::sockopt::sndhwm, 0);
    push_.set(zmq::sockopt::linger, 0);
    sub_.set(zmq::sockopt::rcvhwm, 0);
    sub_.set(zmq::sockopt::linger, 0);
    push_.bind(o.push);
    sub_.bind(o.sub);
    sub_.set(zmq::sockopt::subscribe, o.sender);
    sub_fd_ = sub_.get(zmq::sockopt::fd);
    slots_ = o.rate > 0 ? o.max_outstanding : o.concurrency;
    sent_at_.assign(slots_ + 1, kIdle);
  }

  int run() {
    if (!connect()) {
      std::fprintf(stderr, "bench_loadgen: no reply from a handler within %.0f s\n",
                   o_.connect_timeout);
      return 1;
    }
    auto start = Clock::now();
    next_due_ = start;
    next_conn_ = 1;
    if (o_.rate <= 0)
      for (std::uint64_t c = 1; c <= slots_; ++c) send(c, start);
    // Warm-up, then the window: counters reset at its start.
    drive(start + to_ns(o_.warmup), true);
    reset();
    auto t0 = Clock::now();
    auto cpu0 = cpus();
    auto self0 = cpu_ticks(0);
    drive(t0 + to_ns(o_.duration), true);
    auto t1 = Clock::now();
    auto cpu1 = cpus();
    auto self1 = cpu_ticks(0);
    std::uint64_t done = window_done_, errors = window_errors_, non_200 = window_non_200_;
    Histogram hist = hist_;
    // Bounded drain: what never comes back is "lost".
    drive(t1 + to_ns(o_.drain), false);
    std::uint64_t lost = outstanding_;

    double secs = std::chrono::duration<double>(t1 - t0).count();
    double hz = static_cast<double>(::sysconf(_SC_CLK_TCK));
    double handler_cpu = -1;
    if (!o_.cpu_pids.empty() && cpu0 >= 0 && cpu1 >= 0)
      handler_cpu = static_cast<double>(cpu1 - cpu0) / hz;
    auto us = [](std::uint64_t v) { return static_cast<double>(v) / 1000.0; };
    std::printf(
        "{\"tool\":\"bench_loadgen\",\"label\":\"%s\",\"mode\":\"%s\",\"concurrency\":%u,"
        "\"rate\":%.0f,\"warmup_s\":%.1f,\"duration_s\":%.3f,\"requests\":%llu,\"rps\":%.1f,"
        "\"errors\":%llu,\"non_200\":%llu,\"lost\":%llu,\"overload\":%llu,\"p50_us\":%.1f,\"p90_"
        "us\":%.1f,"
        "\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,\"mean_us\":%.1f,"
        "\"handler_cpu_s\":%.2f,\"handler_cpu_us_per_req\":%.2f,\"loadgen_cpu_s\":%.2f}\n",
        o_.label.c_str(), o_.rate > 0 ? "open" : "closed", o_.rate > 0 ? 0u : o_.concurrency,
        o_.rate, o_.warmup, secs, static_cast<unsigned long long>(done),
        static_cast<double>(done) / secs, static_cast<unsigned long long>(errors),
        static_cast<unsigned long long>(non_200), static_cast<unsigned long long>(lost),
        static_cast<unsigned long long>(window_overload_), us(hist.quantile(0.50)),
        us(hist.quantile(0.90)), us(hist.quantile(0.99)), us(hist.quantile(0.999)), us(hist.max()),
        hist.mean() / 1000.0, handler_cpu,
        handler_cpu >= 0 && done ? handler_cpu * 1e6 / static_cast<double>(done) : -1.0,
        static_cast<double>(self1 - self0) / hz);
    std::fflush(stdout);
    return done > 0 ? 0 : 1;
  }

 private:
  static constexpr std::int64_t kIdle = -1;
  static ns to_ns(double s) { return ns(static_cast<std::int64_t>(s * 1e9)); }
  static std::int64_t stamp(Clock::time_point t) {
    return std::chrono::duration_cast<ns>(t.time_since_epoch()).count();
  }

  long long cpus() const {
    long long sum = 0;
    for (long pid : o_.cpu_pids) {
      auto t = cpu_ticks(pid);
      if (t < 0) return -1;
      sum += t;
    }
    return sum;
  }

  void reset() {
    hist_ = Histogram{};
    window_done_ = window_errors_ = window_overload_ = window_non_200_ = 0;
  }

  // Probe ids lie above every slot, so late probe replies are ignored.
  bool connect() {
    auto deadline = Clock::now() + to_ns(o_.connect_timeout);
    std::uint64_t probe = 4'000'000'000ull;
    while (Clock::now() < deadline) {
      auto m = tmpl_.make(probe++);
      (void)push_.send(m, zmq::send_flags::dontwait);  // EAGAIN: no handler yet
      auto until = std::min(Clock::now() + std::chrono::milliseconds(100), deadline);
      while (Clock::now() < until) {
        zmq::message_t r;
        if (sub_.recv(r, zmq::recv_flags::dontwait)) return true;
        wait_sub(until);
      }
    }
    return false;
  }

  // sndhwm 0: EAGAIN only while no handler is connected; the closed loop
  // then retries the id on its next pass.
  void send(std::uint64_t conn, Clock::time_point when) {
    auto m = tmpl_.make(conn);
    if (!push_.send(m, zmq::send_flags::dontwait)) {
      if (o_.rate <= 0) retry_.push_back(conn);
      return;
    }
    sent_at_[conn] = stamp(when);
    ++outstanding_;
  }

  // Sleeps on the SUB socket's fd until `until` unless a message is ready.
  void wait_sub(Clock::time_point until) {
    if (sub_.get(zmq::sockopt::events) & ZMQ_POLLIN) return;
    auto left = until - Clock::now();
    if (left <= ns(0)) return;
    left = std::min<Clock::duration>(left, std::chrono::milliseconds(100));
    auto n = std::chrono::duration_cast<ns>(left).count();
    timespec ts{static_cast<time_t>(n / 1000000000), static_cast<long>(n % 1000000000)};
    pollfd p{sub_fd_, POLLIN, 0};
    ::ppoll(&p, 1, &ts, nullptr);
  }

  // Runs the workload until `until`; `issue` false only collects replies.
  void drive(Clock::time_point until, bool issue) {
    for (;;) {
      auto now = Clock::now();
      if (now >= until) return;
      if (!issue && outstanding_ == 0) return;
      if (issue && !retry_.empty()) {
        auto again = std::move(retry_);
        retry_.clear();
        for (auto conn : again) send(conn, now);
      }
      if (issue && o_.rate > 0) {
        const ns gap = to_ns(1.0 / o_.rate);
        std::size_t burst = 0;
        while (next_due_ <= now && burst++ < 10000) {
          auto conn = next_conn_;
          next_conn_ = next_conn_ % slots_ + 1;
          if (sent_at_[conn] != kIdle)
            ++window_overload_;
          else
            send(conn, next_due_);
          next_due_ += gap;
        }
      }
      // Every reply waiting now.
      bool got = false;
      zmq::message_t m;
      while (sub_.recv(m, zmq::recv_flags::dontwait)) {
        got = true;
        on_reply(m, issue);
      }
      if (got) continue;
      auto wake = until;
      if (issue && o_.rate > 0) wake = std::min(wake, next_due_);
      if (issue && !retry_.empty()) wake = std::min(wake, now + std::chrono::milliseconds(1));
      wait_sub(wake);
    }
  }

  void on_reply(const zmq::message_t& m, bool issue) {
    std::string_view bytes(static_cast<const char*>(m.data()), m.size());
    Reply r;
    if (!parse_reply(bytes, o_.sender, r)) {
      ++window_errors_;
      return;
    }
    if (r.body.empty()) return;  // a close frame: nothing to match
    auto now = Clock::now();
    bool ok = r.body.starts_with("HTTP/1.1 200 ") || r.body.starts_with("HTTP/1.0 200 ");
    if (ok && !o_.expect.empty()) ok = r.body.find(o_.expect) != std::string_view::npos;
    std::string_view ids = r.ids;
    while (!ids.empty()) {
      auto sp = ids.find(' ');
      auto id = ids.substr(0, sp);
      ids = sp == std::string_view::npos ? std::string_view{} : ids.substr(sp + 1);
      std::uint64_t conn = 0;
      auto [p, ec] = std::from_chars(id.data(), id.data() + id.size(), conn);
      if (ec != std::errc() || conn == 0 || conn > slots_ || sent_at_[conn] == kIdle)
        continue;  // a probe's, or a duplicate
      // Only a 200 (with the expected body) is a served request: anything
      // else is counted apart and stays out of req/s and the latencies.
      if (ok) {
        hist_.add(
            static_cast<std::uint64_t>(std::max<std::int64_t>(0, stamp(now) - sent_at_[conn])));
        ++window_done_;
      } else {
        ++window_non_200_;
      }
      sent_at_[conn] = kIdle;
      --outstanding_;
      if (issue && o_.rate <= 0) send(conn, now);
    }
  }

  const Options& o_;
  FrameTemplate tmpl_;
  zmq::context_t ctx_{1};
  zmq::socket_t push_, sub_;
  int sub_fd_ = -1;
  std::uint64_t slots_ = 0;
  std::vector<std::int64_t> sent_at_;  // ns stamp per conn id, kIdle when answered
  std::uint64_t outstanding_ = 0;
  std::vector<std::uint64_t> retry_;  // closed loop: ids whose send found no handler
  Clock::time_point next_due_;
  std::uint64_t next_conn_ = 1;
  Histogram hist_;
  std::uint64_t window_done_ = 0, window_errors_ = 0, window_overload_ = 0;
  std::uint64_t window_non_200_ = 0;  // answered, but not 200 (or not the expected body)
};

}  // namespace

int main(int argc, char** argv) {
  auto options = parse(argc, argv);
  try {
    LoadGen gen(options);
    return gen.run();
  } catch (const zmq::error_t& e) {
    std::fprintf(stderr, "bench_loadgen: %s\n", e.what());
    return 1;
  }
}
