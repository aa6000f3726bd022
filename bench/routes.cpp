// Route lookup. `table(n)`: n routes that differ only after a long shared
// prefix, hit at the last route (the worst case of first-match-wins), at the
// first, and missed; the last one again through each fallback. `mixed_table(n)`: what an
// application declares, literal pages beside parameterised resources, looked up with a rotating mix
// of paths (hits spread over the table, misses). A lookup should cost about the same at 1,000
// routes as at 10.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "brubeck/handlers/routes.hpp"

namespace {
class Nop : public brubeck::WebMessageHandler {
 public:
  void get() override {}
};

brubeck::RouteTable table(int n, const brubeck::RouteTableOptions& options = {}) {
  std::vector<brubeck::RouteSpec> specs;
  for (int i = 0; i < n; ++i)
    specs.push_back(
        brubeck::class_route<Nop>("^/api/v1/resource" + std::to_string(i) + R"(/(?P<id>\d+)$)"));
  return brubeck::RouteTable(std::move(specs), options);
}

// Groups of four routes per section, so n routes hold n/4 sections.
std::vector<brubeck::RouteSpec> mixed_specs(int n) {
  std::vector<brubeck::RouteSpec> specs;
  for (int i = 0; static_cast<int>(specs.size()) < n; ++i) {
    auto s = std::to_string(i);
    std::string routes[] = {
        "^/page" + s + "$",
        "^/section" + s + R"(/(?P<id>\d+)$)",
        "^/section" + s + R"(/(?P<id>\d+)/(?P<slug>[a-z0-9-]+)$)",
        "^/api/v2/s" + s + R"(/(\w+)/(\d+)$)",
    };
    for (auto& r : routes)
      if (static_cast<int>(specs.size()) < n)
        specs.push_back(brubeck::class_route<Nop>(std::move(r)));
  }
  return specs;
}

std::vector<std::string> mixed_paths(int n) {
  auto sections = n / 4;
  auto last = std::to_string(sections - 1);
  auto mid = std::to_string(sections / 2);
  return {
      "/page0",
      "/section" + mid + "/42",
      "/section" + last + "/7/a-title-here",
      "/api/v2/s" + mid + "/widgets/99",
      "/page" + last,
      "/favicon.ico",                 // miss
      "/section" + mid + "/x",        // miss after a long common prefix
      "/api/v2/s0/gadgets/12345678",  // hit, first api route
  };
}
}  // namespace

static void BM_route_lookup_last(benchmark::State& state) {
  auto n = static_cast<int>(state.range(0));
  auto t = table(n);
  std::string path = "/api/v1/resource" + std::to_string(n - 1) + "/12345";
  for (auto _ : state) benchmark::DoNotOptimize(t.match(path));
}
BENCHMARK(BM_route_lookup_last)->Arg(10)->Arg(1000);

static void BM_route_lookup_first(benchmark::State& state) {
  auto t = table(static_cast<int>(state.range(0)));
  std::string path = "/api/v1/resource0/12345";
  for (auto _ : state) benchmark::DoNotOptimize(t.match(path));
}
BENCHMARK(BM_route_lookup_first)->Arg(10)->Arg(1000);

static void BM_route_lookup_miss(benchmark::State& state) {
  auto t = table(static_cast<int>(state.range(0)));
  std::string path = "/api/v1/resource7/not-a-number";
  for (auto _ : state) benchmark::DoNotOptimize(t.match(path));
}
BENCHMARK(BM_route_lookup_miss)->Arg(10)->Arg(1000);

// The combined matcher alone (what a lookup with many candidates pays), and
// the one-by-one scan it falls back to when it cannot compile.
static void BM_route_lookup_last_set(benchmark::State& state) {
  auto n = static_cast<int>(state.range(0));
  auto t = table(n, {.try_max = 0, .set_max_mem = 0});
  std::string path = "/api/v1/resource" + std::to_string(n - 1) + "/12345";
  for (auto _ : state) benchmark::DoNotOptimize(t.match(path));
}
BENCHMARK(BM_route_lookup_last_set)->Arg(10)->Arg(1000);

static void BM_route_lookup_last_scan(benchmark::State& state) {
  auto n = static_cast<int>(state.range(0));
  auto t = table(n, {.try_max = 0, .set_max_mem = 1024});
  std::string path = "/api/v1/resource" + std::to_string(n - 1) + "/12345";
  for (auto _ : state) benchmark::DoNotOptimize(t.match(path));
}
BENCHMARK(BM_route_lookup_last_scan)->Arg(10)->Arg(1000);

static void BM_route_lookup_mixed(benchmark::State& state) {
  auto n = static_cast<int>(state.range(0));
  brubeck::RouteTable t(mixed_specs(n));
  auto paths = mixed_paths(n);
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(t.match(paths[i]));
    i = i + 1 == paths.size() ? 0 : i + 1;
  }
}
BENCHMARK(BM_route_lookup_mixed)->Arg(12)->Arg(100)->Arg(1000);

BENCHMARK_MAIN();
