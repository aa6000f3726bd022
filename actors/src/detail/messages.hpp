// The typed messages between the router, the shards and the supervisor.
#pragma once

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>

#include <atomic>
#include <memory>
#include <vector>
#include <zmq.hpp>

namespace brubeck::detail {

// Frames the router read in one pass for one shard: one hand-off (and at
// most one wake-up) per batch, not per frame.
struct FrameBatch {
  std::vector<zmq::message_t> frames;
  // Set by the shard when its handler takes the batch. Until then the router
  // keeps a reference: a batch that dies with its shard's mailbox is sent
  // again to the replacement instead of being lost.
  std::atomic<bool> taken{false};
};
using FrameBatchPtr = std::shared_ptr<FrameBatch>;

using frames_atom = caf::atom_constant<caf::atom("frames")>;
using drain_atom = caf::atom_constant<caf::atom("drain")>;
using stop_atom = caf::atom_constant<caf::atom("stop")>;
using replace_atom = caf::atom_constant<caf::atom("replace")>;
// The App's liveness probe: a shard that handles it is not wedged.
using heartbeat_atom = caf::atom_constant<caf::atom("heartbeat")>;

}  // namespace brubeck::detail

// Local only: frames never cross a process boundary through CAF.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(brubeck::detail::FrameBatchPtr)
