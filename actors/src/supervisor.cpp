#include "brubeck/actors/supervisor.hpp"

#include <spdlog/spdlog.h>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/to_string.hpp>

#include <unordered_map>

namespace brubeck {

namespace {
using watch_atom = caf::atom_constant<caf::atom("watch")>;

// Monitors each shard's actor; runs on CAF's scheduler.
caf::behavior watcher(caf::event_based_actor* self, Supervisor::FailureHandler on_failure) {
  auto names = std::make_shared<std::unordered_map<caf::actor_addr, std::string>>();
  self->set_down_handler([names, on_failure](caf::down_msg& dm) {
    auto it = names->find(dm.source);
    std::string name = it == names->end() ? "an actor" : it->second;
    if (!dm.reason) {
      spdlog::debug("supervisor: {} stopped", name);
      return;
    }
    auto what = name + " failed: " + caf::to_string(dm.reason);
    spdlog::critical("supervisor: {}", what);
    if (on_failure) on_failure(what);
  });
  return {
      [self, names](watch_atom, const caf::actor& a, const std::string& name) {
        (*names)[a.address()] = name;
        self->monitor(a);
      },
  };
}
}  // namespace

Supervisor::Supervisor(caf::actor_system& system, zmq::context_t& zmq, FailureHandler on_failure)
    : system_(system), zmq_(zmq) {
  watcher_ = system.spawn(watcher, std::move(on_failure));
}

Supervisor::~Supervisor() {
  drain(std::chrono::milliseconds(0));
  caf::anon_send_exit(watcher_, caf::exit_reason::user_shutdown);
  watcher_ = nullptr;
}

void Supervisor::start_shards(std::size_t count, const ShardOptions& base,
                              const std::vector<RouteSpec>& routes) {
  for (std::size_t i = 0; i < count; ++i) {
    auto options = base;
    options.index = i;
    auto shard = std::make_unique<Shard>(system_, zmq_, options, routes);
    shard->start();
    caf::anon_send(watcher_, watch_atom::value, shard->handle(), "shard " + std::to_string(i));
    shards_.push_back(std::move(shard));
  }
}

std::vector<caf::actor> Supervisor::shard_handles() const {
  std::vector<caf::actor> out;
  for (const auto& s : shards_) out.push_back(s->handle());
  return out;
}

void Supervisor::drain(std::chrono::milliseconds grace) {
  for (auto& s : shards_) s->drain(grace);
  for (auto& s : shards_) s->join();
  shards_.clear();
}

}  // namespace brubeck
