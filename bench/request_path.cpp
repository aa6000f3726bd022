// The whole in-process path of one request, without sockets (issue #5): what
// a shard does between receiving a frame and handing the reply to its PUB
// socket. Decode the captured-shape frame (FrameDecoder), build the Request,
// route it (RouteTable, the demo's table), run the handler (`dispatch`:
// DemoHandler answers "Take five, x!"), and encode the reply frame
// (append_reply_prefix + Response::serialize).
//
//   bench_request_path [Google Benchmark flags]
//     BM_request_path            on the calling stack
//     BM_request_path_fiber/B    each request in its own fiber on a FiberHub
//                                (recycled guarded stacks, the app's 60 s
//                                request deadline), B spawned per run_ready
//     BM_request_path/tnetstring:1  the same frame with tnetstring headers
//   bench_request_path --iterations N [--fiber] [--tnetstring] [--metrics] [--access-log]
//     N requests in a plain loop (no Google Benchmark), for callgrind;
//     --metrics / --access-log add the shard's completion hook with metrics
//     on / an access log (to /dev/null) on:
//       valgrind --tool=callgrind --toggle-collect='*run_requests*' \
//         bench_request_path --iterations 20000
//     gives instructions per request = Ir / N, deterministically.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "brubeck/actors/observe.hpp"
#include "brubeck/handlers/dispatch.hpp"
#include "brubeck/handlers/routes.hpp"
#include "brubeck/pipeline/codec.hpp"
#include "brubeck/pipeline/fiber_hub.hpp"
#include "captured_frame.hpp"

namespace {

using namespace brubeck;

// demo_minimal, as in examples/demo.cpp.
class DemoHandler : public WebMessageHandler {
 public:
  void get() override { set_body("Take five, " + get_argument("name", "dude") + "!"); }
};

class Other : public WebMessageHandler {
 public:
  void get() override { set_body("other"); }
};

// The demo's table (same patterns, same order); only /brubeck matters.
RouteTable demo_routes() {
  std::vector<RouteSpec> specs;
  specs.push_back(class_route<Other>(R"(^/$)"));
  specs.push_back(class_route<DemoHandler>(R"(^/brubeck$)"));
  for (const char* p : {R"(^/class/(\w+)$)",  R"(^/fun/(?P<name>\w+)$)",
                        R"(^/feed$)",         R"(^/json$)",
                        R"(^/shard$)",        R"(^/boom$)",
                        R"(^/args$)",         R"(^/upload$)",
                        R"(^/upload/small$)", R"(^/cookies/set$)",
                        R"(^/cookies$)",      R"(^/redirect$)",
                        R"(^/stream$)",       R"(^/later$)",
                        R"(^/sqlite/notes$)", R"(^/redis/incr$)",
                        R"(^/pg/sleep$)",     R"(^/counter$)",
                        R"(^/fanout$)",       R"(^/slow$)"})
    specs.push_back(class_route<Other>(p));
  return RouteTable(std::move(specs));
}

// The frame bench_loadgen sends (bench/captured_frame.hpp).
std::string captured_frame(bool tnetstring) {
  return "f4c5e1a2-7b3d-4e8f-9a10-b2c3d4e5f607 17 /brubeck " +
         bench::captured_headers("/brubeck", "name=x", tnetstring) + "0:,";
}

struct Path {
  FrameDecoder decoder;
  RouteTable routes = demo_routes();
  HandlerSettings settings;
  std::string bytes;
  std::shared_ptr<const void> storage = std::make_shared<int>(0);  // the shard's batch
  // The shard's completion hook (inactive unless observe() is called).
  std::unique_ptr<ShardMetrics> metrics;
  RequestObserver observer;

  explicit Path(bool tnetstring = false) : bytes(captured_frame(tnetstring)) {
    settings.request_timeout = std::chrono::milliseconds(60000);
  }

  void observe(bool with_metrics, bool with_log) {
    if (with_metrics) metrics = std::make_unique<ShardMetrics>(routes.size());
    observer = RequestObserver(
        with_log ? std::make_shared<AccessLog>("/dev/null", AccessLogFormat::combined, 1) : nullptr,
        metrics.get());
  }

  // One request, as ShardLoop::accept + reply do it. Returns the frame size.
  std::size_t one(std::string& out) {
    const auto start = observer.active() ? Clock::now() : Clock::time_point{};
    Frame frame;
    if (decoder.decode(bytes, frame) != DecodeError::ok || frame.kind != FrameKind::http)
      std::abort();
    Request request(std::move(frame), storage, 0);
    auto result = dispatch(routes, request, settings);
    if (observer.active()) completed(request, result, start);
    if (request.should_close()) result.response.set_header("Connection", "close");
    std::string_view id = request.conn_id();
    out.clear();
    append_reply_prefix(out, request.sender(), std::span<const std::string_view>(&id, 1));
    result.response.serialize(out, result.include_body);
    return out.size();
  }

  // As ShardLoop::finished.
  void completed(const Request& r, const Dispatched& result, Clock::time_point start) {
    Completion c;
    c.method = r.method();
    c.path = r.path();
    c.conn_id = r.conn_id();
    if (observer.logs()) {
      c.query = r.query_string();
      c.version = r.version();
      c.remote = r.remote_addr();
      c.referer = r.header_or("referer", "");
      c.user_agent = r.header_or("user-agent", "");
    }
    c.status = result.response.status;
    c.bytes = result.include_body ? result.response.body.size() : 0;
    c.route = result.route != nullptr ? routes.index_of(result.route) : routes.size();
    c.micros = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count());
    observer.completed(c);
  }
};

bool reply_ok(const std::string& out) {
  return out.find("HTTP/1.1 200 OK") != std::string::npos && out.ends_with("\r\n\r\nTake five, x!");
}

void BM_request_path(benchmark::State& state) {
  Path path(state.range(0) == 1);
  std::string out;
  path.one(out);
  if (!reply_ok(out)) {
    state.SkipWithError(("unexpected reply: " + out).c_str());
    return;
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize(path.one(out));
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["frame_bytes"] = static_cast<double>(path.bytes.size());
  state.counters["reply_bytes"] = static_cast<double>(out.size());
}
// Arg 0: JSON headers (Mongrel2's default protocol); 1: tnetstring headers.
BENCHMARK(BM_request_path)->ArgName("tnetstring")->Arg(0)->Arg(1);

void BM_request_path_fiber(benchmark::State& state) {
  const auto batch = static_cast<std::size_t>(state.range(0));
  Path path;
  FiberHub hub;
  std::size_t bytes = 0;
  for (auto _ : state) {
    for (std::size_t i = 0; i < batch; ++i)
      hub.spawn([&] {
        std::string out;  // the shard allocates each reply (ZeroMQ frees it)
        bytes += path.one(out);
      });
    hub.run_ready(batch);
  }
  benchmark::DoNotOptimize(bytes);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * batch));
}
BENCHMARK(BM_request_path_fiber)->Arg(1)->Arg(64);

// The callgrind entry point: not inlined, so --toggle-collect finds it.
[[gnu::noinline]] std::size_t run_requests(Path& path, std::size_t n) {
  std::size_t bytes = 0;
  std::string out;
  for (std::size_t i = 0; i < n; ++i) bytes += path.one(out);
  return bytes;
}

[[gnu::noinline]] std::size_t run_requests_fiber(Path& path, FiberHub& hub, std::size_t n) {
  std::size_t bytes = 0;
  for (std::size_t done = 0; done < n; done += 64) {
    std::size_t batch = std::min<std::size_t>(64, n - done);
    for (std::size_t i = 0; i < batch; ++i)
      hub.spawn([&] {
        std::string out;
        bytes += path.one(out);
      });
    hub.run_ready(batch);
  }
  return bytes;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 3 && std::strcmp(argv[1], "--iterations") == 0) {
    const std::size_t n = std::strtoull(argv[2], nullptr, 10);
    bool fiber = false, tnetstring = false, with_metrics = false, with_log = false;
    for (int i = 3; i < argc; ++i) {
      if (std::strcmp(argv[i], "--fiber") == 0)
        fiber = true;
      else if (std::strcmp(argv[i], "--metrics") == 0)
        with_metrics = true;
      else if (std::strcmp(argv[i], "--access-log") == 0)
        with_log = true;
      else if (std::strcmp(argv[i], "--tnetstring") == 0)
        tnetstring = true;
      else {
        std::fprintf(stderr, "unknown option %s\n", argv[i]);
        return 2;
      }
    }
    Path path(tnetstring);
    if (with_metrics || with_log) path.observe(with_metrics, with_log);
    std::string out;
    path.one(out);  // warm: first-use allocations, lazily built tables
    if (!reply_ok(out)) {
      std::fprintf(stderr, "unexpected reply: %s\n", out.c_str());
      return 1;
    }
    std::size_t bytes = 0;
    if (fiber) {
      FiberHub hub;
      run_requests_fiber(path, hub, 64);  // warm the stack pool
      bytes = run_requests_fiber(path, hub, n);
    } else {
      bytes = run_requests(path, n);
    }
    std::printf("requests %zu (%s, %s), reply bytes %zu\n", n, fiber ? "fibers" : "plain",
                tnetstring ? "tnetstring" : "json", bytes);
    return 0;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
