// Fiber costs: a switch through the hub against a raw Boost.Context resume in
// the same run (target: hub ≤ 2× raw), and spawn-to-finish with recycled
// guarded stacks against creating a raw fiber on a fresh guarded stack.
#include <benchmark/benchmark.h>

#include <boost/context/fiber.hpp>
#include <boost/context/protected_fixedsize_stack.hpp>

#include <vector>

#include "brubeck/pipeline/fiber_hub.hpp"

namespace ctx = boost::context;

// Round trips main → fiber → main over N fibers in turn: the least a hub
// switch can cost. Items = switches, so the two benchmarks compare per item.
static void BM_raw_fiber_switch(benchmark::State& state) {
  std::vector<ctx::fiber> fibers;
  for (int i = 0; i < state.range(0); ++i)
    fibers.emplace_back([](ctx::fiber&& main) {
      for (;;) main = std::move(main).resume();
      return std::move(main);
    });
  for (auto _ : state)
    for (auto& f : fibers) f = std::move(f).resume();
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_raw_fiber_switch)->Arg(1)->Arg(64);

// The same round trips through the hub: yield, ready queue, resume; the
// reactor runs ready fibers in such batches.
static void BM_hub_fiber_switch(benchmark::State& state) {
  brubeck::FiberHub hub;
  bool stop = false;
  for (int i = 0; i < state.range(0); ++i)
    hub.spawn([&] {
      while (!stop) hub.yield();
    });
  auto n = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) hub.run_ready(n);
  state.SetItemsProcessed(state.iterations() * state.range(0));
  stop = true;
  while (hub.live() > 0) hub.run_ready();
}
BENCHMARK(BM_hub_fiber_switch)->Arg(1)->Arg(64);

// Suspend + wake by token (how a timer or a reply resumes a request).
static void BM_hub_suspend_wake(benchmark::State& state) {
  brubeck::FiberHub hub;
  bool stop = false;
  brubeck::WaitToken token;
  hub.spawn([&] {
    while (!stop) {
      token = hub.prepare_wait();
      hub.suspend(token);
    }
  });
  hub.run_ready();
  for (auto _ : state) {
    hub.wake(token);
    hub.run_ready(1);
  }
  stop = true;
  hub.wake(token);
  hub.run_ready();
}
BENCHMARK(BM_hub_suspend_wake);

static void BM_raw_fiber_create_guarded(benchmark::State& state) {
  for (auto _ : state) {
    ctx::fiber f{std::allocator_arg, ctx::protected_fixedsize_stack(128 * 1024),
                 [](ctx::fiber&& main) { return std::move(main); }};
    f = std::move(f).resume();
  }
}
BENCHMARK(BM_raw_fiber_create_guarded);

static void BM_hub_spawn_run(benchmark::State& state) {
  brubeck::FiberHub hub;
  int n = 0;
  for (auto _ : state) {
    hub.spawn([&n] { ++n; });
    hub.run_ready();
  }
  benchmark::DoNotOptimize(n);
}
BENCHMARK(BM_hub_spawn_run);

BENCHMARK_MAIN();
