// The router: one thread holding the only PULL socket to each Mongrel2
// send_spec. It reads just "SENDER SP CONN_ID SP" of a frame and hands the
// frame, uncopied, to shard hash(sender, conn id) % N, so every message of a
// connection reaches the same shard in order. It never parses headers.
//
// It watches its shards: frames for a shard that has died (those still in its
// mailbox, and those that arrive before the supervisor's replacement starts)
// are held and handed to the replacement, so a shard's death loses nothing
// that reached the router.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

namespace zmq {
class context_t;
}

namespace brubeck {

struct RouterOptions {
  std::vector<std::string> send_specs;
  std::size_t batch = 64;  // frames read per socket per pass
  int rcvhwm = 100000;
  // Frames held per dead shard until its replacement starts; past this they
  // are dropped (and counted) rather than grow without bound.
  std::size_t max_held_frames = 20000;
};

struct RouterStats {
  std::atomic<std::uint64_t> frames{0};
  std::atomic<std::uint64_t> malformed{0};  // no valid sender/conn id: dropped here
  std::atomic<std::uint64_t> batches{0};
  std::atomic<std::uint64_t> replayed{0};  // frames sent again to a replaced shard
  std::atomic<std::uint64_t> dropped{0};   // frames past max_held_frames for a dead shard
  std::atomic<std::uint64_t> held{0};      // frames held now for dead shards
};

// The shard a connection belongs to.
std::size_t shard_for(std::string_view sender, std::string_view conn_id,
                      std::size_t shards) noexcept;

class Router {
 public:
  Router(caf::actor_system& system, zmq::context_t& zmq, RouterOptions options,
         std::vector<caf::actor> shards);
  ~Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // Connects the sockets and starts pulling; throws on a bad endpoint.
  void start();
  // Stops pulling: disconnects from Mongrel2 (so it routes new requests to
  // other handler processes), hands on what was already received, and ends
  // the thread. Blocks until then.
  void stop();

  caf::actor handle() const;
  const RouterStats& stats() const noexcept { return stats_; }
  // Any thread: frames of shard `index` go to `shard` from now on.
  void replace_shard(std::size_t index, const caf::actor& shard);

 private:
  caf::actor_system& system_;
  zmq::context_t& zmq_;
  RouterOptions options_;
  std::vector<caf::actor> shards_;
  RouterStats stats_;
  std::thread thread_;
  caf::actor handle_;
};

}  // namespace brubeck
