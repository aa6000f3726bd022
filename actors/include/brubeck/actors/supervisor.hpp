// Starts the shards, watches them through CAF monitors, restarts a shard that
// dies, and drains them all at shutdown.
//
// A shard that ends with an error (not by a drain) answers its in-flight
// requests 503 on its way out; restart_failed(), called regularly by the
// owner's thread, starts a fresh shard in its place and reports the new
// handle (the router then sends that shard's connections there). The other
// shards never notice. A shard that keeps dying (more than `max_restarts`
// within a minute) is given up on: the failure handler runs, and the process
// should exit for its service manager to restart it.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "brubeck/actors/shard.hpp"

namespace brubeck {

class Supervisor {
 public:
  using FailureHandler = std::function<void(const std::string& what)>;
  using RestartHandler = std::function<void(std::size_t index, const caf::actor& shard)>;

  Supervisor(caf::actor_system& system, zmq::context_t& zmq, FailureHandler on_failure,
             RestartHandler on_restart = {}, std::size_t max_restarts = 5);
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Starts `count` shards, each with its own copy of `routes`; throws what a
  // shard's start-up threw.
  void start_shards(std::size_t count, const ShardOptions& base,
                    const std::vector<RouteSpec>& routes);
  std::vector<caf::actor> shard_handles() const;
  const std::vector<std::unique_ptr<Shard>>& shards() const noexcept { return shards_; }

  // On the owner's thread: replaces the shards that died since the last
  // call. Returns how many were restarted.
  std::size_t restart_failed();
  // Shards restarted so far.
  std::size_t restarts() const noexcept { return restarts_; }

  // Lets every shard finish its requests (at most `grace`) and joins them;
  // `while_waiting` (when given) runs every 20 ms meanwhile, on this thread.
  void drain(std::chrono::milliseconds grace, const std::function<void()>& while_waiting = {});

  struct Deaths;  // what the watcher actor reports; private to supervisor.cpp

 private:
  caf::actor_system& system_;
  zmq::context_t& zmq_;
  FailureHandler on_failure_;
  RestartHandler on_restart_;
  std::size_t max_restarts_;
  std::shared_ptr<Deaths> deaths_;
  caf::actor watcher_;
  ShardOptions base_;
  std::vector<RouteSpec> routes_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::vector<std::shared_ptr<detail::PullHandover>> handovers_;  // one per shard index
  std::vector<std::shared_ptr<ShardMetrics>> metrics_;            // one per shard index (or null)
  std::vector<std::vector<std::chrono::steady_clock::time_point>> restart_times_;
  std::size_t restarts_ = 0;
};

}  // namespace brubeck
