#include "brubeck/actors/app.hpp"

#include <pthread.h>
#include <re2/re2.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <csignal>
#include <cstdlib>
#include <ctime>

#include <nlohmann/json.hpp>

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

std::string_view to_string(Readiness r) noexcept {
  switch (r) {
    case Readiness::starting:
      return "starting";
    case Readiness::waiting_for_mongrel2:
      return "waiting for mongrel2";
    case Readiness::shard_down:
      return "shard down";
    case Readiness::ready:
      return "ready";
    case Readiness::draining:
      return "draining";
    case Readiness::stopped:
      return "stopped";
  }
  return "unknown";
}

void App::set_health(Readiness status, std::size_t alive, std::size_t subscribed) noexcept {
  constexpr std::uint64_t kMask = (1u << 24) - 1;
  health_.store(static_cast<std::uint64_t>(status) | (std::min<std::uint64_t>(alive, kMask) << 8) |
                (std::min<std::uint64_t>(subscribed, kMask) << 32));
}

Health App::health() const noexcept {
  constexpr std::uint64_t kMask = (1u << 24) - 1;
  const auto word = health_.load();
  Health h;
  h.status = static_cast<Readiness>(word & 0xff);
  h.alive = (word >> 8) & kMask;
  h.subscribed = (word >> 32) & kMask;
  h.shards = config_.shard_count();
  return h;
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

// A shard that has not answered a heartbeat for this long counts as down
// (wedged): the health route says so and systemd's watchdog is not fed.
constexpr std::chrono::seconds kShardAnswerWindow{2};

// The service manager's side of the readiness fact (sd_notify(3)); does
// nothing unless the process was started with NOTIFY_SOCKET (systemd's
// Type=notify). READY=1 once ready, STATUS= on every change, STOPPING=1 when
// draining starts, WATCHDOG=1 every half WATCHDOG_USEC while every shard is
// alive: a wedged or half-dead process stops feeding the watchdog and is
// restarted.
class ServiceNotifier {
 public:
  ServiceNotifier() {
    std::uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0)
      watchdog_every_ = std::chrono::microseconds(usec / 2);
  }

  void update(const Health& h, Clock::time_point now) {
    if (!std::getenv("NOTIFY_SOCKET")) return;
    std::string message;
    if (h.status != last_ || h.alive != last_alive_ || h.subscribed != last_subscribed_) {
      message += "STATUS=" + status_text(h) + "\n";
      last_ = h.status;
      last_alive_ = h.alive;
      last_subscribed_ = h.subscribed;
    }
    if (h.ready() && !ready_sent_) {
      message += "READY=1\n";
      ready_sent_ = true;
    }
    if (h.status == Readiness::draining && !stopping_sent_) {
      message += "STOPPING=1\n";
      stopping_sent_ = true;
    }
    // While draining the process is alive as long as this thread runs: the
    // drain itself is bounded by grace_ms.
    const bool feed = h.status == Readiness::draining || h.alive == h.shards;
    if (watchdog_every_.count() > 0 && feed && now >= next_ping_) {
      message += "WATCHDOG=1\n";
      next_ping_ = now + watchdog_every_;
    }
    if (!message.empty()) sd_notify(0, message.c_str());
  }

 private:
  static std::string status_text(const Health& h) {
    return fmt::format("{}: {} of {} shards alive, {} with Mongrel2 subscribed",
                       to_string(h.status), h.alive, h.shards, h.subscribed);
  }

  std::chrono::nanoseconds watchdog_every_{0};
  Clock::time_point next_ping_{};
  Readiness last_ = Readiness::stopped;
  std::size_t last_alive_ = 0;
  std::size_t last_subscribed_ = 0;
  bool ready_sent_ = false;
  bool stopping_sent_ = false;
};

// The health route's reply: the readiness fact as JSON, never cached.
RouteSpec health_route(const std::string& path, const App& app) {
  std::string pattern = "^";
  pattern += RE2::QuoteMeta(path);
  pattern += '$';
  return function_route(std::move(pattern), {Method::get}, [&app](WebMessageHandler& h) {
    const auto health = app.health();
    h.set_status(health.ready() ? 200 : 503);
    h.set_header("Cache-Control", "no-store");
    h.set_json(nlohmann::ordered_json{{"status", to_string(health.status)},
                                      {"shards", health.shards},
                                      {"alive", health.alive},
                                      {"subscribed", health.subscribed}});
  });
}

// The last stop signal a thread outside run()'s mask caught (see below).
std::atomic<int> caught_signal{0};
extern "C" void catch_stop_signal(int sig) { caught_signal.store(sig); }

// Blocks SIGINT/SIGTERM in the calling thread, and so in every thread it
// starts (CAF's, ZeroMQ's, the shards'), so only run()'s wait takes them.
// Threads the application started before run() (a database's, a template
// reloader's) do not block them: while run()'s thread is between two waits
// the kernel hands the signal to one of those, whose default action would
// end the process without a drain. A handler catches it there instead, and
// the next wait returns it.
class SignalMask {
 public:
  SignalMask() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, &old_);
    struct sigaction action {};
    action.sa_handler = catch_stop_signal;
    sigemptyset(&action.sa_mask);
    for (int sig : {SIGINT, SIGTERM}) sigaction(sig, &action, &old_actions_[sig == SIGINT]);
  }
  ~SignalMask() {
    for (int sig : {SIGINT, SIGTERM}) sigaction(sig, &old_actions_[sig == SIGINT], nullptr);
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  // A pending signal, or 0 after `ms` without one.
  int wait(long ms) {
    timespec ts{ms / 1000, (ms % 1000) * 1'000'000};
    int sig = sigtimedwait(&set_, nullptr, &ts);
    if (sig > 0) return sig;
    return caught_signal.exchange(0);
  }

 private:
  sigset_t set_{};
  sigset_t old_{};
  struct sigaction old_actions_[2]{};
};

}  // namespace

int App::run() {
  std::vector<RouteSpec> routes;
  try {
    configure_logging(config_.log_level);
    // The health route comes first: no route of the application shadows it.
    if (!config_.health_route.empty()) routes.push_back(health_route(config_.health_route, *this));
    routes.insert(routes.end(), routes_.begin(), routes_.end());
    RouteTable check(routes);  // a bad pattern stops us here, before any thread
  } catch (const std::exception& e) {
    spdlog::error("brubeck: cannot start: {}", e.what());
    return 2;
  }
  set_health(Readiness::starting, 0, 0);
  ServiceNotifier notifier;
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
      supervisor.start_shards(config_.shard_count(), base, routes);
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
      set_health(Readiness::stopped, 0, 0);
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
    // The readiness fact, from the shards as they are now: one heartbeat
    // per shard in flight at a time, alive while it answers.
    auto check_shards = [&](bool draining) {
      const auto now = Clock::now();
      std::size_t alive = 0, subscribed = 0;
      for (const auto& shard : supervisor.shards()) {
        shard->heartbeat(now);
        if (shard->alive(now, kShardAnswerWindow)) ++alive;
        if (shard->subscribed()) ++subscribed;
      }
      const auto n = config_.shard_count();
      const auto status = draining         ? Readiness::draining
                          : alive < n      ? Readiness::shard_down
                          : subscribed < n ? Readiness::waiting_for_mongrel2
                                           : Readiness::ready;
      set_health(status, alive, subscribed);
      notifier.update(health(), now);
    };
    check_shards(false);
    while (!stop_requested_.load()) {
      if (int sig = signals.wait(100)) {
        spdlog::info("brubeck: {} received, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
        break;
      }
      std::lock_guard lock(supervisor_mutex_);
      supervisor.restart_failed();
      check_shards(false);
    }
    check_shards(true);  // not ready from here on (and STOPPING=1)
    {
      std::lock_guard lock(supervisor_mutex_);
      supervisor_ = nullptr;
    }
    live_router = nullptr;
    if (router) router->stop();
    supervisor.drain(config_.grace, [&] { check_shards(true); });
    running_.store(false);
    set_health(Readiness::stopped, 0, 0);
    code = failed_.load() ? 1 : 0;
  }
  spdlog::info("brubeck: stopped");
  return code;
}

}  // namespace brubeck
