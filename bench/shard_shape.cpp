// The two shard shapes (docs/architecture.md, "The shard: a CAF companion on
// its own reactor"), measured side by side in one run:
//   companion: a caf::actor_companion whose messages become tasks of the
//              shard's own Reactor loop (eventfd wake, optional busy-poll);
//   detached:  a spawn<detached> event-based actor, fibers resumed inside its
//              message handlers.
// Each message spawns and runs one fiber, as a request does on a shard.
#include <benchmark/benchmark.h>

#include <atomic>
#include <caf/all.hpp>
#include <thread>

#include "brubeck/pipeline/fiber_hub.hpp"
#include "brubeck/pipeline/reactor.hpp"
#include "detail/loop_actor.hpp"

namespace {

using ping_atom = caf::atom_constant<caf::atom("ping")>;
constexpr int kBatch = 10000;

caf::actor_system_config& config() {
  static caf::actor_system_config cfg = [] {
    caf::actor_system_config c;
    c.set("scheduler.policy", caf::atom("sharing"));
    c.set("scheduler.max-threads", std::size_t{1});
    return c;
  }();
  return cfg;
}

// A shard in the companion shape, on its own thread.
class CompanionShard {
 public:
  CompanionShard(caf::actor_system& sys, std::chrono::microseconds idle_poll) {
    std::atomic<bool> ready{false};
    thread_ = std::thread([&, idle_poll] {
      brubeck::FiberHub hub;
      brubeck::Reactor reactor(&hub, brubeck::ReactorOptions{idle_poll, 256});
      reactor_ = &reactor;
      brubeck::detail::LoopActorBinding binding(
          sys, reactor,
          caf::behavior{
              [&](std::int64_t) { hub.spawn([this] { processed.fetch_add(1); }); },
              [](ping_atom) { return std::int64_t{1}; },
          });
      handle = binding.handle();
      ready = true;
      reactor.run();
      binding.shutdown();
    });
    while (!ready) std::this_thread::yield();
  }
  ~CompanionShard() {
    handle = nullptr;
    reactor_->stop();
    thread_.join();
  }
  caf::actor handle;
  std::atomic<std::int64_t> processed{0};

 private:
  std::thread thread_;
  brubeck::Reactor* reactor_ = nullptr;
};

struct DetachedState {
  brubeck::FiberHub hub;
};

caf::behavior detached_shard(caf::stateful_actor<DetachedState>* self,
                             std::atomic<std::int64_t>* processed) {
  return {
      [=](std::int64_t) {
        self->state.hub.spawn([processed] { processed->fetch_add(1); });
        self->state.hub.run_ready();
      },
      [](ping_atom) { return std::int64_t{1}; },
  };
}

void wait_for(std::atomic<std::int64_t>& counter, std::int64_t target) {
  while (counter.load(std::memory_order_acquire) < target) std::this_thread::yield();
}

void BM_throughput_companion(benchmark::State& state) {
  caf::actor_system sys{config()};
  {
    CompanionShard shard(sys, std::chrono::microseconds(state.range(0)));
    std::int64_t sent = 0;
    for (auto _ : state) {
      for (int i = 0; i < kBatch; ++i) caf::anon_send(shard.handle, std::int64_t{i});
      sent += kBatch;
      wait_for(shard.processed, sent);
    }
    state.SetItemsProcessed(sent);
  }
}
BENCHMARK(BM_throughput_companion)->Arg(0)->Arg(50)->UseRealTime();

void BM_throughput_detached(benchmark::State& state) {
  caf::actor_system sys{config()};
  std::atomic<std::int64_t> processed{0};
  {
    auto shard = sys.spawn<caf::detached>(detached_shard, &processed);
    std::int64_t sent = 0;
    for (auto _ : state) {
      for (int i = 0; i < kBatch; ++i) caf::anon_send(shard, std::int64_t{i});
      sent += kBatch;
      wait_for(processed, sent);
    }
    state.SetItemsProcessed(sent);
    caf::anon_send_exit(shard, caf::exit_reason::user_shutdown);
  }
}
BENCHMARK(BM_throughput_detached)->UseRealTime();

// One request/response from another thread: the cost of a cross-thread wake.
void round_trips(benchmark::State& state, caf::actor_system& sys, const caf::actor& target) {
  caf::scoped_actor self{sys};
  for (auto _ : state) {
    self->request(target, caf::infinite, ping_atom::value)
        .receive([](std::int64_t) {}, [](caf::error&) {});
  }
}

void BM_round_trip_companion(benchmark::State& state) {
  caf::actor_system sys{config()};
  CompanionShard shard(sys, std::chrono::microseconds(state.range(0)));
  round_trips(state, sys, shard.handle);
}
BENCHMARK(BM_round_trip_companion)->Arg(0)->Arg(50)->UseRealTime();

void BM_round_trip_detached(benchmark::State& state) {
  caf::actor_system sys{config()};
  std::atomic<std::int64_t> processed{0};
  auto shard = sys.spawn<caf::detached>(detached_shard, &processed);
  round_trips(state, sys, shard);
  caf::anon_send_exit(shard, caf::exit_reason::user_shutdown);
}
BENCHMARK(BM_round_trip_detached)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
