#include "brubeck/actors/router.hpp"

#include <spdlog/spdlog.h>
#include <sys/epoll.h>

#include <caf/behavior.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <zmq.hpp>

#include "brubeck/pipeline/codec.hpp"
#include "brubeck/pipeline/reactor.hpp"
#include "detail/log_limiter.hpp"
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

class RouterLoop {
 public:
  RouterLoop(caf::actor_system& system, zmq::context_t& zmq, const RouterOptions& options,
             const std::vector<caf::actor>& shards, RouterStats& stats)
      : options_(options),
        shards_(shards),
        stats_(stats),
        reactor_(nullptr),
        sockets_(zmq, options.send_specs, reactor_, options.rcvhwm) {
    pending_.resize(shards.size());
    reactor_.add_poll_hook([this] { return pull(); });
    binding_ = std::make_unique<detail::LoopActorBinding>(
        system, reactor_,
        caf::behavior{[this](detail::stop_atom) { stop(); },
                      // A restarted shard: its connections go to the new actor.
                      [this](detail::replace_atom, std::uint64_t index, const caf::actor& shard) {
                        if (index < shards_.size()) shards_[index] = shard;
                      }});
  }

  ~RouterLoop() { binding_->shutdown(); }

  const caf::actor& handle() const { return binding_->handle(); }
  void run() { reactor_.run(); }

 private:
  bool pull() {
    received_.clear();
    sockets_.receive(received_, options_.batch);
    for (auto& msg : received_) route(std::move(msg));
    flush();
    return !received_.empty();
  }

  void route(zmq::message_t msg) {
    stats_.frames.fetch_add(1, std::memory_order_relaxed);
    auto key = peek_route_key(std::string_view(static_cast<const char*>(msg.data()), msg.size()));
    if (!key) {
      stats_.malformed.fetch_add(1, std::memory_order_relaxed);
      std::uint64_t suppressed = 0;
      if (malformed_log_.allow(suppressed))
        spdlog::warn(
            "router: dropped a frame of {} bytes without a valid sender and conn id ({} more "
            "since the last report)",
            msg.size(), suppressed);
      return;
    }
    auto k = shard_for(key->sender, key->conn_id, shards_.size());
    if (!pending_[k]) pending_[k] = std::make_shared<detail::FrameBatch>();
    pending_[k]->frames.push_back(std::move(msg));
  }

  void flush() {
    for (std::size_t k = 0; k < pending_.size(); ++k) {
      if (!pending_[k]) continue;
      stats_.batches.fetch_add(1, std::memory_order_relaxed);
      caf::anon_send(shards_[k], detail::frames_atom::value, std::move(pending_[k]));
      pending_[k] = nullptr;
    }
  }

  void stop() {
    sockets_.disconnect();
    // Frames may still be between ZeroMQ's I/O thread and our queue.
    for (int idle = 0; idle < 5;) {
      if (pull()) {
        idle = 0;
      } else {
        ++idle;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    }
    reactor_.stop();
  }

  const RouterOptions& options_;
  std::vector<caf::actor> shards_;  // the router thread's own copy
  RouterStats& stats_;
  Reactor reactor_;
  detail::PullSockets sockets_;
  std::vector<zmq::message_t> received_;  // reused every pass
  std::vector<detail::FrameBatchPtr> pending_;
  std::unique_ptr<detail::LoopActorBinding> binding_;
  detail::LogLimiter malformed_log_;
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
