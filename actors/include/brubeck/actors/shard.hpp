// A shard: one pinned thread that owns a reactor, a fiber hub, a frame
// decoder, its own compiled route table and its own PUB socket to Mongrel2.
// Frames arrive from the router as CAF messages; each request runs as a fiber
// and its reply leaves on the shard's PUB socket. Nothing mutable is shared
// with other shards.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "brubeck/actors/ask.hpp"
#include "brubeck/actors/observe.hpp"
#include "brubeck/handlers/routes.hpp"
#include "brubeck/handlers/settings.hpp"
#include "brubeck/pipeline/fiber_hub.hpp"
#include "brubeck/pipeline/reactor.hpp"

namespace zmq {
class context_t;
}

namespace brubeck {

namespace detail {
struct PullHandover;
}

struct ShardOptions {
  std::size_t index = 0;
  std::vector<std::string> recv_specs;  // Mongrel2 endpoints the PUB connects to
  // With a single shard there is nothing to route: the shard pulls from
  // Mongrel2's send_specs itself, saving a thread hand-off per burst. Empty:
  // frames come from the router.
  std::vector<std::string> pull_specs;
  // With pull_specs: where the PULL sockets live across restarts, so the
  // replacement of a dead shard takes over the frames queued for it. Set by
  // the supervisor (one per shard index); null: the shard owns its sockets.
  std::shared_ptr<detail::PullHandover> pull_handover;
  int pub_hwm = 100000;
  // Requests running at once on this shard; more are answered 503 with
  // Retry-After at once, never queued without bound.
  std::size_t max_in_flight = 2048;
  // Larger request headers (as Mongrel2 frames them) are answered 431.
  std::size_t max_header_bytes = 8 * 1024;
  bool pin = true;
  FiberOptions fibers;
  ReactorOptions reactor;
  // Shared by every shard; read-only while serving.
  std::shared_ptr<const HandlerSettings> settings = std::make_shared<HandlerSettings>();
  // The App's named actors, for named_actor() in handlers; may be null.
  std::shared_ptr<const ActorDirectory> actors;
  // Where finished requests are logged; null: nowhere.
  std::shared_ptr<AccessLog> access_log;
  // Keep ShardMetrics (latency per route, status classes): in
  // metrics_store when given (the supervisor keeps one per shard index, so
  // a replacement counts on where the dead shard stopped), else the shard's own.
  bool metrics = false;
  std::shared_ptr<ShardMetrics> metrics_store;
};

// Counters a shard keeps; readable from any thread.
struct ShardStats {
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> replies{0};
  std::atomic<std::uint64_t> malformed{0};
  std::atomic<std::uint64_t> disconnects{0};
  std::atomic<std::uint64_t> ignored{0};          // JSON/XML socket messages without a handler
  std::atomic<std::uint64_t> uploads{0};          // large uploads handed to handlers
  std::atomic<std::uint64_t> rejected{0};         // answered by the shard itself (400, 413)
  std::atomic<std::uint64_t> cancelled{0};        // requests whose client disconnected
  std::atomic<std::uint64_t> overloaded{0};       // answered 503: max_in_flight reached
  std::atomic<std::uint64_t> dropped_replies{0};  // the PUB socket was at its high-water mark
  std::atomic<std::uint64_t> stalls{0};           // fibers that ran past stall_ms without waiting
  // Kept only while requests are observed (access log or metrics on):
  std::atomic<std::uint64_t> finished{0};  // requests whose handler returned
  std::atomic<std::uint64_t> fibers{0};    // fibers alive at the last finished request
};

// What the App reads to tell whether a shard can serve (see App::health()):
// whether a Mongrel2 subscribed to its replies, whether its loop still runs,
// and when it last answered a heartbeat. Readable from any thread.
struct ShardLiveness {
  // Subscriptions Mongrel2 holds on the shard's XPUB socket (one per
  // Mongrel2 connected to a recv_spec; gone when that Mongrel2 goes).
  std::atomic<std::int64_t> subscriptions{0};
  // Set when the shard's loop has ended (drained or died).
  std::atomic<bool> ended{false};
  // steady_clock nanoseconds: the last heartbeat sent by the App, and the
  // send time of the last one the shard answered.
  std::atomic<std::int64_t> beat_sent{0};
  std::atomic<std::int64_t> beat_answered{0};
};

class Shard {
 public:
  Shard(caf::actor_system& system, zmq::context_t& zmq, ShardOptions options,
        std::vector<RouteSpec> routes);
  ~Shard();
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;

  // Starts the thread; returns once the shard accepts messages. Throws what
  // start-up threw (a bad route pattern, a bad endpoint).
  void start();
  // The shard's actor; valid between start() and the end of drain.
  caf::actor handle() const;
  // Sends a heartbeat unless the last one is still unanswered.
  void heartbeat(std::chrono::steady_clock::time_point now);
  // The loop runs, and the last heartbeat was answered or is younger than
  // `window`: the shard is neither dead nor wedged.
  bool alive(std::chrono::steady_clock::time_point now, std::chrono::nanoseconds window) const;
  // A Mongrel2 subscribed to the shard's replies.
  bool subscribed() const noexcept { return liveness_.subscriptions.load() > 0; }
  // The loop has ended (after a drain, or its death).
  bool ended() const noexcept { return liveness_.ended.load(); }

  // Asks the shard to finish: requests in flight get `grace` to complete,
  // then the thread ends. Returns at once; join() waits.
  void drain(std::chrono::milliseconds grace);
  void join();

  std::size_t index() const noexcept { return options_.index; }
  const ShardStats& stats() const noexcept { return stats_; }
  // Null unless ShardOptions::metrics.
  const ShardMetrics* metrics() const noexcept { return metrics_.get(); }

 private:
  caf::actor_system& system_;
  zmq::context_t& zmq_;
  ShardOptions options_;
  std::vector<RouteSpec> routes_;
  ShardStats stats_;
  ShardLiveness liveness_;
  std::shared_ptr<ShardMetrics> metrics_;
  std::thread thread_;
  std::unique_ptr<caf::actor> handle_;
};

}  // namespace brubeck
