// Many requests asleep at once in one handler process (issue #4): memory per
// in-flight request and throughput against the concurrency/latency bound.
//
// The process plays Mongrel2 (PUSH and SUB over loopback TCP) to a real App
// with one shard: N request frames, each for a route that sleeps S ms in its
// fiber; RSS is sampled while all N sleep, then every reply is collected.
//
//   bench_concurrency [N=100000] [S_ms=8000] [guard=0]
// Target: ≤ 16 KiB RSS per in-flight request.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <zmq.hpp>

#include "brubeck/brubeck.hpp"

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::string_view kSender = "54c6755b-9628-40a4-9a2d-cc82a816345e";

long rss_kib() {
  std::ifstream statm("/proc/self/statm");
  long size = 0, resident = 0;
  statm >> size >> resident;
  return resident * (::sysconf(_SC_PAGESIZE) / 1024);
}

// A browser-shaped request, ~500 bytes of headers as Mongrel2 sends them.
std::string frame(std::size_t conn, int sleep_ms) {
  std::string query = "ms=" + std::to_string(sleep_ms);
  std::string headers =
      R"({"PATH":"/sleep","x-forwarded-for":"127.0.0.1","accept-language":"en-US,en;q=0.9",)"
      R"("accept-encoding":"gzip, deflate, br","accept":"text/html,application/xhtml+xml",)"
      R"("user-agent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0",)"
      R"("host":"127.0.0.1:6767","METHOD":"GET","VERSION":"HTTP/1.1","URI":"/sleep?)" +
      query + R"(","QUERY":")" + query +
      R"(","PATTERN":"/","URL_SCHEME":"http","REMOTE_ADDR":"127.0.0.1"})";
  return std::string(kSender) + " " + std::to_string(conn) + " /sleep " +
         std::to_string(headers.size()) + ":" + headers + ",0:,";
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 100000;
  const int sleep_ms = argc > 2 ? std::atoi(argv[2]) : 8000;
  const bool guard = argc > 3 && std::atoi(argv[3]) != 0;

  zmq::context_t ctx{1};
  zmq::socket_t push{ctx, zmq::socket_type::push};
  zmq::socket_t sub{ctx, zmq::socket_type::sub};
  push.set(zmq::sockopt::sndhwm, 0);
  sub.set(zmq::sockopt::rcvhwm, 0);
  push.bind("tcp://127.0.0.1:*");
  sub.bind("tcp://127.0.0.1:*");
  sub.set(zmq::sockopt::subscribe, std::string(kSender));
  sub.set(zmq::sockopt::rcvtimeo, 200);

  brubeck::Config config;
  config.send_specs = {push.get(zmq::sockopt::last_endpoint)};
  config.recv_specs = {sub.get(zmq::sockopt::last_endpoint)};
  config.shards = 1;
  config.pin_threads = false;
  config.stack_guard = guard;
  config.stack_size = 64 * 1024;
  config.pub_hwm = 4 * n + 1000;
  config.request_timeout = std::chrono::milliseconds(0);
  config.log_level = "warn";
  brubeck::App app{config};
  app.route(R"(^/sleep$)", {brubeck::Method::get}, [](brubeck::WebMessageHandler& h) {
    brubeck::this_fiber::sleep_for(std::chrono::milliseconds(std::stoi(h.get_argument("ms"))));
    h.set_body("slept");
  });
  std::thread server([&] { app.run(); });
  for (int i = 0; i < 1000 && !app.running(); ++i) {
    (void)sub.get(zmq::sockopt::events);  // lets the SUB send its subscription
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const long base = rss_kib();

  auto start = Clock::now();
  for (std::size_t i = 0; i < n; ++i) {
    auto f = frame(i + 1, sleep_ms);
    push.send(zmq::buffer(f), zmq::send_flags::none);
  }
  auto sent = Clock::now();
  // Sample while everything sleeps: peak of the samples taken until the
  // first reply is due.
  long peak = base;
  std::size_t got = 0;
  while (Clock::now() <
         start + std::chrono::milliseconds(sleep_ms) - std::chrono::milliseconds(200)) {
    peak = std::max(peak, rss_kib());
    zmq::message_t m;
    if (sub.recv(m, zmq::recv_flags::dontwait)) ++got;  // none expected yet
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  auto deadline = Clock::now() + std::chrono::milliseconds(sleep_ms) + std::chrono::seconds(60);
  while (got < n && Clock::now() < deadline) {
    zmq::message_t m;
    if (sub.recv(m)) ++got;
  }
  auto end = Clock::now();
  app.stop();
  server.join();

  double secs = std::chrono::duration<double>(end - start).count();
  double bound = static_cast<double>(n) / (sleep_ms / 1000.0);
  double rate = static_cast<double>(got) / secs;
  std::printf("requests %zu, sleep %d ms, guard pages %s\n", n, sleep_ms, guard ? "on" : "off");
  std::printf("sent in %.2f s; all answered: %s (%zu)\n",
              std::chrono::duration<double>(sent - start).count(), got == n ? "yes" : "NO", got);
  std::printf("RSS: base %ld KiB, with all in flight %ld KiB: %.2f KiB per in-flight request\n",
              base, peak, static_cast<double>(peak - base) / static_cast<double>(n));
  std::printf("throughput %.0f req/s; concurrency/latency bound %.0f req/s: %.2f of the bound\n",
              rate, bound, rate / bound);
  return got == n ? 0 : 1;
}
