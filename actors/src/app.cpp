#include "brubeck/actors/app.hpp"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <ctime>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/exit_reason.hpp>
#include <caf/send.hpp>
#include <zmq.hpp>

#include "brubeck/actors/router.hpp"
#include "brubeck/actors/supervisor.hpp"
#include "brubeck/pipeline/log.hpp"
#include "brubeck/pipeline/offload.hpp"

namespace brubeck {

App::App(Config config) : config_(std::move(config)) {}
App::~App() = default;

AppStats App::stats() const {
  AppStats out;
  std::lock_guard lock(supervisor_mutex_);
  if (supervisor_ == nullptr) return out;
  for (const auto& shard : supervisor_->shards()) {
    const auto& s = shard->stats();
    out.requests += s.requests.load(std::memory_order_relaxed);
    out.replies += s.replies.load(std::memory_order_relaxed);
    out.disconnects += s.disconnects.load(std::memory_order_relaxed);
    out.cancelled += s.cancelled.load(std::memory_order_relaxed);
    out.overloaded += s.overloaded.load(std::memory_order_relaxed);
    out.rejected += s.rejected.load(std::memory_order_relaxed);
  }
  out.restarts = supervisor_->restarts();
  return out;
}

std::shared_ptr<const HandlerSettings> App::handler_settings() const {
  auto settings = std::make_shared<HandlerSettings>();
  if (!config_.cookie_secrets.empty())
    settings->cookie_signer = std::make_shared<CookieSigner>(config_.cookie_secrets);
  settings->max_body_bytes = config_.max_body_bytes;
  settings->multipart.max_file_bytes = config_.max_body_bytes;
  settings->mongrel2_chroot = config_.mongrel2_chroot;
  settings->upload_store = config_.upload_store_path();
  settings->error_page = error_page_;
  settings->request_timeout = config_.request_timeout;
  settings->services = std::make_shared<const Services>(services_);
  return settings;
}

namespace {

// Blocks SIGINT/SIGTERM in the calling thread, and so in every thread it
// starts (CAF's, ZeroMQ's, the shards'), so only run()'s wait takes them.
class SignalMask {
 public:
  SignalMask() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, &old_);
  }
  ~SignalMask() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  // A pending signal, or 0 after `ms` without one.
  int wait(long ms) {
    timespec ts{ms / 1000, (ms % 1000) * 1'000'000};
    int sig = sigtimedwait(&set_, nullptr, &ts);
    return sig > 0 ? sig : 0;
  }

 private:
  sigset_t set_{};
  sigset_t old_{};
};

}  // namespace

int App::run() {
  try {
    configure_logging(config_.log_level);
    RouteTable check(routes_);  // a bad pattern stops us here, before any thread
  } catch (const std::exception& e) {
    spdlog::error("brubeck: cannot start: {}", e.what());
    return 2;
  }
  SignalMask signals;
  caf::actor_system_config cfg;
  // CAF's scheduler only runs the supervisor and user actors: keep it small.
  cfg.set("scheduler.policy", caf::atom("sharing"));
  cfg.set("scheduler.max-threads", std::size_t{1});
  caf::actor_system system{cfg};
  zmq::context_t zmq{1};
  OffloadPool::configure_default(config_.offload_threads, config_.offload_queue);

  int code = 0;
  {
    Router* live_router = nullptr;  // set once the router runs (several shards only)
    Supervisor supervisor(
        system, zmq,
        [this](const std::string&) {
          failed_.store(true);
          stop_requested_.store(true);
        },
        [&live_router](std::size_t index, const caf::actor& shard) {
          if (live_router != nullptr) live_router->replace_shard(index, shard);
        });
    std::unique_ptr<Router> router;
    auto actors = std::make_shared<ActorDirectory>();
    // User actors end with run(): before the system, which waits for them.
    struct StopActors {
      std::shared_ptr<ActorDirectory>& actors;
      ~StopActors() {
        for (auto& [name, handle] : *actors)
          caf::anon_send_exit(handle, caf::exit_reason::user_shutdown);
        actors->clear();
      }
    } stop_actors{actors};
    try {
      for (auto& [name, spawn] : actor_factories_) {
        auto handle = spawn(system);
        if (!handle) throw std::runtime_error("actor '" + name + "' could not be spawned");
        if (!actors->emplace(name, std::move(handle)).second)
          throw std::runtime_error("two actors named '" + name + "'");
      }
      ShardOptions base;
      base.actors = actors;
      base.recv_specs = config_.recv_specs;
      base.pub_hwm = static_cast<int>(config_.pub_hwm);
      base.max_in_flight = config_.max_in_flight;
      base.max_header_bytes = config_.max_header_bytes;
      base.pin = config_.pin_threads;
      base.fibers.stack_size = config_.stack_size;
      base.fibers.guard_pages = config_.stack_guard;
      base.fibers.stall_threshold = config_.stall;
      base.reactor.idle_poll = config_.idle_poll;
      base.settings = handler_settings();
      // One shard has nothing to route: it pulls from Mongrel2 itself.
      const bool direct = config_.shard_count() == 1;
      if (direct) base.pull_specs = config_.send_specs;
      supervisor.start_shards(config_.shard_count(), base, routes_);
      if (!direct) {
        router = std::make_unique<Router>(system, zmq, RouterOptions{config_.send_specs},
                                          supervisor.shard_handles());
        router->start();
        live_router = router.get();
      }
    } catch (const std::exception& e) {
      spdlog::error("brubeck: cannot start: {}", e.what());
      router.reset();
      supervisor.drain(std::chrono::milliseconds(0));
      return 2;
    }
    spdlog::info("brubeck: serving with {} shards; pulling from {}, replying to {}",
                 config_.shard_count(), fmt::join(config_.send_specs, ", "),
                 fmt::join(config_.recv_specs, ", "));
    {
      std::lock_guard lock(supervisor_mutex_);
      supervisor_ = &supervisor;
    }
    running_.store(true);
    while (!stop_requested_.load()) {
      if (int sig = signals.wait(100)) {
        spdlog::info("brubeck: {} received, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
        break;
      }
      std::lock_guard lock(supervisor_mutex_);
      supervisor.restart_failed();
    }
    {
      std::lock_guard lock(supervisor_mutex_);
      supervisor_ = nullptr;
    }
    live_router = nullptr;
    if (router) router->stop();
    supervisor.drain(config_.grace);
    running_.store(false);
    code = failed_.load() ? 1 : 0;
  }
  spdlog::info("brubeck: stopped");
  return code;
}

}  // namespace brubeck
