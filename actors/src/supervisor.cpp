#include "brubeck/actors/supervisor.hpp"

#include <spdlog/spdlog.h>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/to_string.hpp>

#include <mutex>
#include <thread>

#include <unordered_map>
#include "detail/pull_sockets.hpp"

namespace brubeck {

struct Supervisor::Deaths {
  std::mutex mutex;
  std::vector<std::pair<std::size_t, std::string>> pending;  // shard index, why
  bool draining = false;
};

namespace {
using watch_atom = caf::atom_constant<caf::atom("watch")>;

// Monitors each shard's actor; runs on CAF's scheduler and only records a
// death: restarting means joining threads, which the owner's thread does.
caf::behavior watcher(caf::event_based_actor* self, std::shared_ptr<Supervisor::Deaths> deaths) {
  auto indices = std::make_shared<std::unordered_map<caf::actor_addr, std::uint64_t>>();
  self->set_down_handler([indices, deaths](caf::down_msg& dm) {
    auto it = indices->find(dm.source);
    if (it == indices->end()) return;
    auto index = static_cast<std::size_t>(it->second);
    indices->erase(it);
    if (!dm.reason) {
      spdlog::debug("supervisor: shard {} stopped", index);
      return;
    }
    std::lock_guard lock(deaths->mutex);
    if (deaths->draining) return;
    auto why = caf::to_string(dm.reason);
    spdlog::critical("supervisor: shard {} failed: {}", index, why);
    deaths->pending.emplace_back(index, why);
  });
  return {
      [self, indices](watch_atom, const caf::actor& a, std::uint64_t index) {
        (*indices)[a.address()] = index;
        self->monitor(a);
      },
  };
}
}  // namespace

Supervisor::Supervisor(caf::actor_system& system, zmq::context_t& zmq, FailureHandler on_failure,
                       RestartHandler on_restart, std::size_t max_restarts)
    : system_(system),
      zmq_(zmq),
      on_failure_(std::move(on_failure)),
      on_restart_(std::move(on_restart)),
      max_restarts_(max_restarts),
      deaths_(std::make_shared<Deaths>()) {
  watcher_ = system.spawn(watcher, deaths_);
}

Supervisor::~Supervisor() {
  drain(std::chrono::milliseconds(0));
  caf::anon_send_exit(watcher_, caf::exit_reason::user_shutdown);
  watcher_ = nullptr;
}

void Supervisor::start_shards(std::size_t count, const ShardOptions& base,
                              const std::vector<RouteSpec>& routes) {
  base_ = base;
  routes_ = routes;
  for (std::size_t i = 0; i < count; ++i) {
    auto options = base;
    options.index = i;
    if (!base.pull_specs.empty()) options.pull_handover = std::make_shared<detail::PullHandover>();
    handovers_.push_back(options.pull_handover);
    if (base.metrics) options.metrics_store = std::make_shared<ShardMetrics>(routes.size());
    metrics_.push_back(options.metrics_store);
    auto shard = std::make_unique<Shard>(system_, zmq_, options, routes);
    shard->start();
    caf::anon_send(watcher_, watch_atom::value, shard->handle(), std::uint64_t{i});
    shards_.push_back(std::move(shard));
  }
  restart_times_.resize(shards_.size());
}

std::vector<caf::actor> Supervisor::shard_handles() const {
  std::vector<caf::actor> out;
  for (const auto& s : shards_) out.push_back(s->handle());
  return out;
}

std::size_t Supervisor::restart_failed() {
  std::vector<std::pair<std::size_t, std::string>> dead;
  {
    std::lock_guard lock(deaths_->mutex);
    dead.swap(deaths_->pending);
  }
  std::size_t restarted = 0;
  for (auto& [index, why] : dead) {
    if (index >= shards_.size()) continue;
    // A shard that keeps dying would restart forever: give up instead.
    auto now = std::chrono::steady_clock::now();
    auto& times = restart_times_[index];
    std::erase_if(times, [&](auto t) { return now - t > std::chrono::minutes(1); });
    if (times.size() >= max_restarts_) {
      auto what = "shard " + std::to_string(index) + " failed " + std::to_string(times.size() + 1) +
                  " times within a minute (last: " + why + ")";
      spdlog::critical("supervisor: {}; giving up", what);
      if (on_failure_) on_failure_(what);
      continue;
    }
    times.push_back(now);
    shards_[index]->join();  // its thread has ended, or is about to
    auto options = base_;
    options.index = index;
    options.pull_handover = handovers_[index];
    options.metrics_store = metrics_[index];
    auto shard = std::make_unique<Shard>(system_, zmq_, options, routes_);
    try {
      shard->start();
    } catch (const std::exception& e) {
      auto what = "shard " + std::to_string(index) + " could not be restarted: " + e.what();
      spdlog::critical("supervisor: {}", what);
      if (on_failure_) on_failure_(what);
      continue;
    }
    caf::anon_send(watcher_, watch_atom::value, shard->handle(), std::uint64_t{index});
    shards_[index] = std::move(shard);
    ++restarts_;
    ++restarted;
    spdlog::warn("supervisor: shard {} restarted", index);
    if (on_restart_) on_restart_(index, shards_[index]->handle());
  }
  return restarted;
}

void Supervisor::drain(std::chrono::milliseconds grace,
                       const std::function<void()>& while_waiting) {
  {
    std::lock_guard lock(deaths_->mutex);
    deaths_->draining = true;
  }
  for (auto& s : shards_) s->drain(grace);
  if (while_waiting) {
    for (auto& s : shards_) {
      while (!s->ended()) {
        while_waiting();
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  }
  for (auto& s : shards_) s->join();
  shards_.clear();
  handovers_.clear();
  metrics_.clear();
}

}  // namespace brubeck
