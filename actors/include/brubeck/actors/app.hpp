// The application: routes declared up front, then run() wires the router,
// the supervisor and N shards to Mongrel2 and serves until SIGINT/SIGTERM
// (or stop()), when it stops pulling, lets in-flight requests finish within
// the grace period and returns 0. SIGHUP opens the access log again (log
// rotation) and changes nothing else.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "brubeck/config/config.hpp"
#include "brubeck/handlers/routes.hpp"
#include "brubeck/handlers/settings.hpp"

namespace brubeck {

class AccessLog;
class Router;
class Supervisor;

// Counters summed over the shards serving now (a restarted shard counts from
// zero again). They let a caller see facts instead of guessing them from
// time: a request was taken, a client's disconnect cancelled one.
struct AppStats {
  std::uint64_t requests = 0;     // taken by a shard, each in its own fiber
  std::uint64_t replies = 0;      // answered by a handler
  std::uint64_t disconnects = 0;  // Mongrel2's disconnect notices
  std::uint64_t cancelled = 0;    // requests cancelled by their client's disconnect
  std::uint64_t overloaded = 0;   // answered 503: max_in_flight reached
  std::uint64_t rejected = 0;     // refused by the shard itself (400, 413, 431, ...)
  std::uint64_t restarts = 0;     // shards the supervisor replaced
};

// Whether the process can serve, as the health route and the service
// manager (systemd's READY=1 and watchdog) see it.
enum class Readiness : std::uint8_t {
  starting,              // run() is starting the shards
  waiting_for_mongrel2,  // a shard has no Mongrel2 subscribed to its replies
  shard_down,            // a shard died (until its restart) or is wedged
  ready,                 // every shard alive, Mongrel2 subscribed to each
  draining,              // SIGTERM or stop(): finishing requests in flight
  stopped,               // run() is not serving
};
// "starting", "waiting for mongrel2", "shard down", "ready", "draining", "stopped".
std::string_view to_string(Readiness r) noexcept;

// The readiness fact and what it was derived from, read by App::health().
struct Health {
  Readiness status = Readiness::stopped;
  std::size_t shards = 0;      // configured
  std::size_t alive = 0;       // running, and answered a heartbeat within 2 s
  std::size_t subscribed = 0;  // with at least one Mongrel2 subscribed
  bool ready() const noexcept { return status == Readiness::ready; }
};

class App {
 public:
  explicit App(Config config = {});
  ~App();
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  // A handler class; `args` are passed to its constructor for every request.
  template <class H, class... Args>
  App& route(std::string pattern, Args&&... args) {
    routes_.push_back(class_route<H>(std::move(pattern), std::forward<Args>(args)...));
    return *this;
  }
  // A function route answering only `methods` (HEAD comes with GET).
  App& route(std::string pattern, MethodSet methods, RouteFunction fn) {
    routes_.push_back(function_route(std::move(pattern), methods, std::move(fn)));
    return *this;
  }

  // Gives the route added last its own request deadline (instead of the
  // config's request_timeout_ms; zero: none).
  App& timeout(std::chrono::milliseconds limit) {
    if (routes_.empty()) throw std::logic_error("App::timeout: no route yet");
    routes_.back().timeout = limit;
    return *this;
  }
  // Names the route added last, for url_for:
  // `app.route<User>(R"(^/user/(\d+)$)").named("user");`
  App& named(std::string name) {
    if (routes_.empty()) throw std::logic_error("App::named: no route to name yet");
    routes_.back().name = std::move(name);
    return *this;
  }

  // An actor shared by every shard, spawned by run() with the app's actor
  // system and stopped when run() ends; handlers reach it with
  // named_actor(name) and ask(). `spawn` is called once:
  // `app.actor("counter", [](caf::actor_system& sys) { return sys.spawn(counter); });`
  App& actor(std::string name, std::function<caf::actor(caf::actor_system&)> spawn) {
    actor_factories_.emplace_back(std::move(name), std::move(spawn));
    return *this;
  }

  // The app-wide error page: fills the reply of any WebMessageHandler for an
  // error status (404, 405, 500, HttpError) unless the handler overrides
  // write_error().
  App& error_page(std::function<void(WebMessageHandler&, int status)> page) {
    error_page_ = std::move(page);
    return *this;
  }

  // Gives every handler a service of type T (handler.service<T>()): the
  // template set, a session store... One per type; read-only once run()
  // starts, from every shard at once.
  template <class T>
  App& provide(std::shared_ptr<T> service) {
    services_.provide(std::move(service));
    return *this;
  }
  const Services& services() const noexcept { return services_; }

  // What every shard serves from: the routes as declared, and the settings
  // each handler is given (cookie signer, limits, error page, services),
  // built from the config. brubeck/testing.hpp's TestClient serves from
  // these too, so a test sees what a shard would.
  const std::vector<RouteSpec>& routes() const noexcept { return routes_; }
  std::shared_ptr<const HandlerSettings> handler_settings() const;

  // Serves until a signal or stop(). Returns 0 after a clean stop, 1 when a
  // shard failed, 2 when start-up failed (bad route, bad endpoint).
  int run();
  // Any thread: makes run() stop as on SIGTERM.
  void stop() noexcept { stop_requested_.store(true); }
  // True once run() is serving (shards and router started).
  bool running() const noexcept { return running_.load(); }
  // Any thread: the shards' counters while run() serves; all zero before
  // and after.
  AppStats stats() const;
  // Any thread, lock-free: the readiness fact, updated by run() every 100 ms
  // (and at once when draining starts). The health route (the health_route
  // setting) answers it, 200 when ready, else 503; run() tells systemd
  // (sd_notify: READY=1, WATCHDOG=1 while every shard is alive,
  // STOPPING=1, STATUS=) when started with NOTIFY_SOCKET.
  Health health() const noexcept;
  // Any thread, while run() serves with metrics_route set: every counter in
  // Prometheus' text format (what metrics_route answers). Nullopt when the
  // shards are being replaced this instant (try again) or not serving.
  std::optional<std::string> metrics_text() const;

  const Config& config() const noexcept { return config_; }
  // A setting's value, typed: the framework's, or one the application
  // declared with Config::add_setting before load_config
  // (`app.setting<std::string>("demo.redis")`).
  template <class T>
  T setting(std::string_view name) const {
    return config_.get<T>(name);
  }

 private:
  void serve_metrics(WebMessageHandler& h) const;

  Config config_;
  std::vector<RouteSpec> routes_;
  std::function<void(WebMessageHandler&, int)> error_page_;
  Services services_;
  std::vector<std::pair<std::string, std::function<caf::actor(caf::actor_system&)>>>
      actor_factories_;
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> failed_{false};
  std::atomic<bool> running_{false};
  // Readiness (8 bits), shards alive (24), shards subscribed (24): one word,
  // so a reader never sees the parts of two different moments.
  std::atomic<std::uint64_t> health_{static_cast<std::uint64_t>(Readiness::stopped)};
  void set_health(Readiness status, std::size_t alive, std::size_t subscribed) noexcept;
  // The supervisor while run() serves; the mutex also covers its restarts,
  // which replace shards (and their counters).
  mutable std::mutex supervisor_mutex_;
  const Supervisor* supervisor_ = nullptr;
  const Router* router_ = nullptr;         // with several shards
  std::vector<std::string> route_labels_;  // the shards' route table, in order
  std::shared_ptr<AccessLog> access_log_;
};

}  // namespace brubeck
