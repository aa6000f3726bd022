// Route lookup: the demo's table, and tables of 10 and 1,000 routes where the
// request hits the last route (the worst case of first-match-wins).
#include <benchmark/benchmark.h>

#include "brubeck/handlers/routes.hpp"

namespace {
class Nop : public brubeck::WebMessageHandler {
 public:
  void get() override {}
};

brubeck::RouteTable table(int n) {
  std::vector<brubeck::RouteSpec> specs;
  for (int i = 0; i < n; ++i)
    specs.push_back(
        brubeck::class_route<Nop>("^/api/v1/resource" + std::to_string(i) + R"(/(?P<id>\d+)$)"));
  return brubeck::RouteTable(std::move(specs));
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

BENCHMARK_MAIN();
