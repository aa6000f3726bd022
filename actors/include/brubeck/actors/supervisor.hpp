// Starts the shards, watches them through CAF monitors, and drains them at
// shutdown. A shard that ends with an error (not by a drain) is reported
// through the failure callback, so the process can exit non-zero and be
// restarted by its service manager instead of limping on with a dead shard.
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

  Supervisor(caf::actor_system& system, zmq::context_t& zmq, FailureHandler on_failure);
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Starts `count` shards, each with its own copy of `routes`; throws what a
  // shard's start-up threw.
  void start_shards(std::size_t count, const ShardOptions& base,
                    const std::vector<RouteSpec>& routes);
  std::vector<caf::actor> shard_handles() const;
  const std::vector<std::unique_ptr<Shard>>& shards() const noexcept { return shards_; }

  // Lets every shard finish its requests (at most `grace`) and joins them.
  void drain(std::chrono::milliseconds grace);

 private:
  caf::actor_system& system_;
  zmq::context_t& zmq_;
  caf::actor watcher_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace brubeck
