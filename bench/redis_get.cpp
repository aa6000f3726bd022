// Redis GET through the fiber driver (issue #4), for comparison with
// redis-benchmark against the same server in the same run (bench/redis.sh).
// C fibers on one shard-style reactor share one pipelined connection and
// GET a key in a loop for D seconds.
//
//   bench_redis_get PORT [C=50] [D_s=5]
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "brubeck/drivers/redis.hpp"
#include "brubeck/pipeline/fiber_hub.hpp"
#include "brubeck/pipeline/reactor.hpp"
#include "brubeck/pipeline/spawn.hpp"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s PORT [clients=50] [seconds=5]\n", argv[0]);
    return 2;
  }
  auto port = static_cast<std::uint16_t>(std::atoi(argv[1]));
  int clients = argc > 2 ? std::atoi(argv[2]) : 50;
  double seconds = argc > 3 ? std::atof(argv[3]) : 5;

  brubeck::FiberHub hub;
  brubeck::Reactor reactor(&hub);
  std::uint64_t ops = 0;
  double elapsed = 0;
  hub.spawn([&] {
    auto redis = brubeck::RedisClient::connect("127.0.0.1", port);
    redis->set("key:__rand_int__", "xxx");
    auto start = brubeck::Clock::now();
    auto stop_at = start + std::chrono::duration_cast<brubeck::Clock::duration>(
                               std::chrono::duration<double>(seconds));
    std::vector<brubeck::Joinable<void>> workers;
    for (int i = 0; i < clients; ++i)
      workers.push_back(brubeck::spawn([&] {
        while (brubeck::Clock::now() < stop_at) {
          if (!redis->get("key:__rand_int__")) std::abort();
          ++ops;
        }
      }));
    for (auto& w : workers) w.join();
    elapsed = std::chrono::duration<double>(brubeck::Clock::now() - start).count();
    reactor.stop();
  });
  reactor.run();
  std::printf("brubeck GET: %.0f requests per second (%d fibers, one connection)\n",
              static_cast<double>(ops) / elapsed, clients);
  return 0;
}
