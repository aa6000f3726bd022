#include "brubeck/actors/router.hpp"

#include <spdlog/spdlog.h>
#include <sys/epoll.h>

#include <algorithm>
#include <deque>

#include <caf/behavior.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/system_messages.hpp>
#include <zmq.hpp>

#include "brubeck/pipeline/codec.hpp"
#include "brubeck/pipeline/log_limiter.hpp"
#include "brubeck/pipeline/reactor.hpp"
#include "detail/loop_actor.hpp"
#include "detail/loop_thread.hpp"
#include "detail/messages.hpp"
#include "detail/pull_sockets.hpp"

namespace brubeck {

std::size_t shard_for(std::string_view sender, std::string_view conn_id,
                      std::size_t shards) noexcept {
  // FNV-1a over both parts, then a final mix: conn ids are small sequential
  // numbers, and consecutive ones should spread over the shards.
  std::uint64_t h = 1469598103934665603ull;
  for (char c : sender) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  h = (h ^ ' ') * 1099511628211ull;
  for (char c : conn_id) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return shards == 0 ? 0 : static_cast<std::size_t>(h % shards);
}

namespace {

using detail::FrameBatchPtr;

class RouterLoop {
 public:
  RouterLoop(caf::actor_system& system, zmq::context_t& zmq, const RouterOptions& options,
             const std::vector<caf::actor>& shards, RouterStats& stats)
      : options_(options),
        stats_(stats),
        reactor_(nullptr),
        sockets_(zmq, options.send_specs, options.rcvhwm) {
    sockets_.attach(reactor_);
    slots_.resize(shards.size());
    pending_.resize(shards.size());
    reactor_.add_poll_hook([this] {
      if (sockets_.armed()) pull();
      return sockets_.armed();
    });
    binding_ = std::make_unique<detail::LoopActorBinding>(
        system, reactor_,
        caf::behavior{[this](detail::stop_atom) { stop(); },
                      [this](detail::replace_atom, std::uint64_t index, const caf::actor& shard) {
                        replace(index, shard);
                      }});
    binding_->self()->set_down_handler([this](caf::down_msg& dm) { shard_down(dm); });
    for (std::size_t k = 0; k < shards.size(); ++k) {
      slots_[k].actor = shards[k];
      binding_->self()->monitor(shards[k]);
    }
  }

  ~RouterLoop() { binding_->shutdown(); }

  const caf::actor& handle() const { return binding_->handle(); }
  void run() { reactor_.run(); }

 private:
  // One shard as the router sees it.
  struct Slot {
    caf::actor actor;
    // Batches sent but not yet taken (oldest first), or, while the shard is
    // down, held for its replacement.
    std::deque<FrameBatchPtr> unacked;
    bool down = false;
    std::size_t held_frames = 0;
  };

  // Returns the frames taken. `all`: ask every socket, not only those whose
  // fd fired (stop() drains without the reactor turning).
  std::size_t pull(bool all = false) {
    received_.clear();
    sockets_.receive(received_, options_.batch, all);
    for (auto& msg : received_) route(std::move(msg));
    flush();
    return received_.size();
  }

  void route(zmq::message_t msg) {
    stats_.frames.fetch_add(1, std::memory_order_relaxed);
    auto key = peek_route_key(std::string_view(static_cast<const char*>(msg.data()), msg.size()));
    if (!key) {
      stats_.malformed.fetch_add(1, std::memory_order_relaxed);
      malformed_log_.warn("router: dropped a frame of {} bytes without a valid sender and conn id",
                          msg.size());
      return;
    }
    auto k = shard_for(key->sender, key->conn_id, slots_.size());
    if (!pending_[k]) pending_[k] = std::make_shared<detail::FrameBatch>();
    pending_[k]->frames.push_back(std::move(msg));
  }

  void flush() {
    for (std::size_t k = 0; k < pending_.size(); ++k) {
      if (!pending_[k]) continue;
      auto batch = std::move(pending_[k]);
      pending_[k] = nullptr;
      auto& slot = slots_[k];
      if (slot.down) {
        hold(k, std::move(batch));
        continue;
      }
      while (!slot.unacked.empty() && slot.unacked.front()->taken.load(std::memory_order_acquire))
        slot.unacked.pop_front();
      send(slot, std::move(batch));
    }
  }

  void send(Slot& slot, FrameBatchPtr batch) {
    stats_.batches.fetch_add(1, std::memory_order_relaxed);
    slot.unacked.push_back(batch);
    caf::anon_send(slot.actor, detail::frames_atom::value, std::move(batch));
  }

  void hold(std::size_t k, FrameBatchPtr batch) {
    auto& slot = slots_[k];
    if (slot.held_frames + batch->frames.size() > options_.max_held_frames) {
      stats_.dropped.fetch_add(batch->frames.size(), std::memory_order_relaxed);
      held_log_.warn("router: shard {} is down and {} frames wait for it; dropped {} more", k,
                     slot.held_frames, batch->frames.size());
      return;
    }
    slot.held_frames += batch->frames.size();
    slot.unacked.push_back(std::move(batch));
    publish_held();
  }

  void publish_held() {
    std::size_t held = 0;
    for (const auto& slot : slots_) held += slot.held_frames;
    stats_.held.store(held, std::memory_order_relaxed);
  }

  // A shard died: what it had not taken, and what comes for it from now on,
  // waits for the replacement. A shard that stopped normally is being drained
  // with the whole process, after the router.
  void shard_down(const caf::down_msg& dm) {
    for (std::size_t k = 0; k < slots_.size(); ++k) {
      auto& slot = slots_[k];
      if (!slot.actor || slot.actor.address() != dm.source) continue;
      if (!dm.reason) return;
      slot.down = true;
      slot.held_frames = 0;
      std::erase_if(slot.unacked, [](const FrameBatchPtr& b) {
        return b->taken.load(std::memory_order_acquire);
      });
      for (const auto& b : slot.unacked) slot.held_frames += b->frames.size();
      publish_held();
      spdlog::warn("router: shard {} is down; holding its frames ({} so far) for its replacement",
                   k, slot.held_frames);
      return;
    }
  }

  // The replacement of a dead shard: it gets, in order, every frame the old
  // one never took. (The down notice may not have arrived yet: the old actor
  // is gone all the same, since the supervisor joined its thread.)
  void replace(std::uint64_t index, const caf::actor& shard) {
    if (index >= slots_.size()) return;
    auto& slot = slots_[index];
    auto old = std::move(slot.unacked);
    slot.unacked.clear();
    slot.actor = shard;
    slot.down = false;
    slot.held_frames = 0;
    publish_held();
    binding_->self()->monitor(shard);
    std::size_t frames = 0;
    for (auto& b : old) {
      if (b->taken.load(std::memory_order_acquire)) continue;
      frames += b->frames.size();
      send(slot, std::move(b));
    }
    stats_.replayed.fetch_add(frames, std::memory_order_relaxed);
    if (frames > 0)
      spdlog::warn("router: shard {} replaced; handed it {} frames held for it", index, frames);
  }

  void stop() {
    sockets_.disconnect();
    // Frames may still be between ZeroMQ's I/O thread and our queue.
    for (int idle = 0; idle < 5;) {
      if (pull(true) > 0) {
        idle = 0;
      } else {
        ++idle;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    }
    reactor_.stop();
  }

  const RouterOptions& options_;
  RouterStats& stats_;
  Reactor reactor_;
  detail::PullSockets sockets_;
  std::vector<Slot> slots_;               // the router thread's own view of the shards
  std::vector<zmq::message_t> received_;  // reused every pass
  std::vector<detail::FrameBatchPtr> pending_;
  std::unique_ptr<detail::LoopActorBinding> binding_;
  detail::LogLimiter malformed_log_;
  detail::LogLimiter held_log_;
};

}  // namespace

Router::Router(caf::actor_system& system, zmq::context_t& zmq, RouterOptions options,
               std::vector<caf::actor> shards)
    : system_(system), zmq_(zmq), options_(std::move(options)), shards_(std::move(shards)) {}

Router::~Router() { stop(); }

void Router::start() {
  detail::start_loop_thread(
      thread_,
      [this] {
        auto loop = std::make_unique<RouterLoop>(system_, zmq_, options_, shards_, stats_);
        handle_ = loop->handle();
        return loop;
      },
      [](RouterLoop& loop) {
        try {
          loop.run();
        } catch (const std::exception& e) {
          spdlog::critical("router: event loop failed: {}", e.what());
        }
      });
}

caf::actor Router::handle() const { return handle_; }

void Router::replace_shard(std::size_t index, const caf::actor& shard) {
  if (handle_) caf::anon_send(handle_, detail::replace_atom::value, std::uint64_t{index}, shard);
}

void Router::stop() {
  if (!thread_.joinable()) return;
  if (handle_) caf::anon_send(handle_, detail::stop_atom::value);
  thread_.join();
  handle_ = nullptr;
}

}  // namespace brubeck
