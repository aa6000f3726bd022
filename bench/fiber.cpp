// Fiber costs per fiber resumed (items = fibers that got to run once):
//  - raw ping-pong: main resumes each fiber in turn and the fiber resumes
//    main straight back, from loop bodies with no function frame around the
//    switches: one `resume()` round trip, the floor of Boost.Context.
//  - raw ring: each fiber passes control to the next from inside a function
//    (as every scheduler's yield does), filing the continuation it receives.
//  - the hub: fibers yield; the hub switches straight to the next ready one
//    and only the last of the batch returns to run_ready().
// Spawn-to-finish with recycled guarded stacks is compared with creating a
// raw fiber on a fresh guarded stack.
#include <benchmark/benchmark.h>

#include <boost/context/fiber.hpp>
#include <boost/context/protected_fixedsize_stack.hpp>

#include <vector>

#include "brubeck/pipeline/fiber_hub.hpp"

namespace ctx = boost::context;

static void BM_raw_pingpong_switch(benchmark::State& state) {
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
BENCHMARK(BM_raw_pingpong_switch)->Arg(1)->Arg(64);

namespace {
// Fiber i hands over to fiber i+1 (the last one to main); whoever runs next
// files the continuation it was handed into the slot of the one that left.
struct Ring {
  std::vector<ctx::fiber> fibers;
  ctx::fiber main;
  int from = -1;  // -1: main

  void file(int self, ctx::fiber&& c) {
    (from < 0 ? main : fibers[from]) = std::move(c);
    from = self;
  }
  [[gnu::noinline]] void pass(int i) {
    auto& next = i + 1 == static_cast<int>(fibers.size()) ? main : fibers[i + 1];
    from = i;
    auto c = std::move(next).resume();
    file(i, std::move(c));
  }
};
}  // namespace

static void BM_raw_ring_switch(benchmark::State& state) {
  Ring ring;
  ring.fibers.reserve(state.range(0));
  for (int i = 0; i < state.range(0); ++i)
    ring.fibers.emplace_back([&ring, i](ctx::fiber&& from) {
      ring.file(i, std::move(from));
      for (;;) ring.pass(i);
      return ctx::fiber{};
    });
  for (auto _ : state) {
    ring.from = -1;
    auto c = std::move(ring.fibers[0]).resume();
    ring.fibers[ring.from] = std::move(c);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
  ring.fibers.clear();  // unwinds the fibers before `main` goes
}
BENCHMARK(BM_raw_ring_switch)->Arg(1)->Arg(64);

// One batch of run_ready(): hub → fiber 1 → … → fiber N → hub.
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
