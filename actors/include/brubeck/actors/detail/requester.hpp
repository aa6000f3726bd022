// The actor each shard (and the router) runs on its own loop: a CAF
// companion with request() added, so fibers can ask other actors and get the
// reply on the shard's thread.
#pragma once

#include <caf/actor_companion.hpp>
#include <caf/mixin/requester.hpp>

namespace brubeck::detail {

// actor_companion lacks request(); the mixin adds it (for ask() from fibers).
class LoopActor : public caf::extend<caf::actor_companion, LoopActor>::with<caf::mixin::requester> {
 public:
  explicit LoopActor(caf::actor_config& cfg) : extended_base(cfg) {}
};

}  // namespace brubeck::detail
