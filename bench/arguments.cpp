// Argument decoding: a realistic query string (10 arguments, some percent-
// and plus-encoded) parsed into (name, value) pairs, against the floor of
// copying the same bytes once.
#include <benchmark/benchmark.h>

#include <string>

#include "brubeck/handlers/request.hpp"

namespace {
const std::string kQuery =
    "q=take+five&lang=en-US&page=3&per_page=50&sort=-created_at&filter%5Bstatus%5D=open"
    "&filter%5Btag%5D=jazz%20piano&utm_source=news&utm_medium=email&token=abc123DEF456";
}

static void BM_copy_query(benchmark::State& state) {
  for (auto _ : state) {
    std::string copy = kQuery;
    benchmark::DoNotOptimize(copy.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(kQuery.size()));
}
BENCHMARK(BM_copy_query);

static void BM_parse_query_string(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(brubeck::parse_query_string(kQuery));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(kQuery.size()));
}
BENCHMARK(BM_parse_query_string);

BENCHMARK_MAIN();
