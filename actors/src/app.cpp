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

#include "brubeck/actors/observe.hpp"
#include "brubeck/actors/router.hpp"
#include "brubeck/actors/supervisor.hpp"
#include "brubeck/pipeline/fiber_hub.hpp"
#include "brubeck/pipeline/log.hpp"
#include "brubeck/pipeline/offload.hpp"
#include "live_assets.hpp"

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

std::optional<std::string> App::metrics_text() const {
  // Never waits on the run loop (a shard calls this): it holds the mutex
  // while it replaces dead shards, which may take seconds.
  std::unique_lock lock(supervisor_mutex_, std::try_to_lock);
  if (!lock.owns_lock() || supervisor_ == nullptr) return std::nullopt;
  MetricsExposition out;
  using Labels = MetricsExposition::Labels;
  const auto& shards = supervisor_->shards();
  // Summed over the shards (each wrote only its own).
  std::array<std::uint64_t, 6> by_class{};
  struct Sum {
    std::array<std::uint64_t, kLatencyBucketsUs.size() + 1> buckets{};
    std::uint64_t sum_us = 0;
  };
  std::vector<Sum> routes(route_labels_.size() + 1);
  for (const auto& shard : shards) {
    const auto* m = shard->metrics();
    if (m == nullptr) continue;
    for (std::size_t k = 0; k < by_class.size(); ++k)
      by_class[k] += m->by_class[k].load(std::memory_order_relaxed);
    for (std::size_t r = 0; r < routes.size() && r < m->histograms(); ++r) {
      const auto& h = m->histogram(r);
      for (std::size_t b = 0; b < routes[r].buckets.size(); ++b)
        routes[r].buckets[b] += h.buckets[b].load(std::memory_order_relaxed);
      routes[r].sum_us += h.sum_us.load(std::memory_order_relaxed);
    }
  }
  static constexpr const char* kClass[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
  for (std::size_t k = 0; k < by_class.size(); ++k)
    out.counter("brubeck_requests_total", "Requests answered, by status class",
                {{"status", kClass[k]}}, static_cast<double>(by_class[k]));
  for (std::size_t r = 0; r < routes.size(); ++r) {
    std::vector<std::pair<double, std::uint64_t>> buckets;
    std::uint64_t cumulative = 0;
    for (std::size_t b = 0; b < kLatencyBucketsUs.size(); ++b) {
      cumulative += routes[r].buckets[b];
      buckets.emplace_back(static_cast<double>(kLatencyBucketsUs[b]) / 1e6, cumulative);
    }
    cumulative += routes[r].buckets.back();
    out.histogram("brubeck_request_duration_seconds",
                  "Time from a request's arrival at its shard to its reply, by route pattern",
                  {{"route", r < route_labels_.size() ? route_labels_[r] : "(none)"}}, buckets,
                  static_cast<double>(routes[r].sum_us) / 1e6, cumulative);
  }
  for (const auto& shard : shards) {
    const auto& s = shard->stats();
    const Labels shard_label{{"shard", std::to_string(shard->index())}};
    auto get = [](const std::atomic<std::uint64_t>& a) {
      return static_cast<double>(a.load(std::memory_order_relaxed));
    };
    const auto requests = s.requests.load(std::memory_order_relaxed);
    const auto finished = s.finished.load(std::memory_order_relaxed);
    out.gauge("brubeck_in_flight", "Requests whose handler is running", shard_label,
              static_cast<double>(requests > finished ? requests - finished : 0));
    out.gauge("brubeck_fibers", "Fibers alive on the shard (at its last finished request)",
              shard_label, get(s.fibers));
    out.counter("brubeck_shard_requests_total", "Requests taken by a shard, each in a fiber",
                shard_label, get(s.requests));
    out.counter("brubeck_shard_replies_total", "Replies from handlers", shard_label,
                get(s.replies));
    out.counter("brubeck_shard_rejected_total",
                "Requests the shard refused itself (400, 413, 431, ...)", shard_label,
                get(s.rejected));
    out.counter("brubeck_shard_overloaded_total", "Requests answered 503: max_in_flight reached",
                shard_label, get(s.overloaded));
    out.counter("brubeck_shard_malformed_total", "Malformed frames", shard_label, get(s.malformed));
    out.counter("brubeck_shard_disconnects_total", "Mongrel2's disconnect notices", shard_label,
                get(s.disconnects));
    out.counter("brubeck_shard_cancelled_total", "Requests cancelled by their client's disconnect",
                shard_label, get(s.cancelled));
    out.counter("brubeck_shard_uploads_total", "Spooled uploads handed to handlers", shard_label,
                get(s.uploads));
    out.counter("brubeck_shard_ignored_total", "Socket messages without a handler", shard_label,
                get(s.ignored));
    out.counter("brubeck_shard_stalls_total", "Fibers that ran past stall_ms without waiting",
                shard_label, get(s.stalls));
    out.counter("brubeck_pub_dropped_total",
                "Replies dropped: the shard's PUB socket was at its high-water mark", shard_label,
                get(s.dropped_replies));
  }
  out.counter("brubeck_shard_restarts_total", "Shards the supervisor replaced", {},
              static_cast<double>(supervisor_->restarts()));
  if (router_ != nullptr) {
    const auto& r = router_->stats();
    auto get = [](const std::atomic<std::uint64_t>& a) {
      return static_cast<double>(a.load(std::memory_order_relaxed));
    };
    out.counter("brubeck_router_frames_total", "Frames the router pulled", {}, get(r.frames));
    out.counter("brubeck_router_malformed_total", "Frames without a sender and conn id", {},
                get(r.malformed));
    out.gauge("brubeck_router_held_frames", "Frames held for dead shards' replacements", {},
              get(r.held));
    out.counter("brubeck_router_replayed_total", "Held frames handed to a replacement shard", {},
                get(r.replayed));
    out.counter("brubeck_router_dropped_total", "Frames dropped past max_held_frames", {},
                get(r.dropped));
  }
  out.gauge("brubeck_offload_queued", "offload() jobs waiting for a worker", {},
            static_cast<double>(OffloadPool::default_pool().queued()));
  if (access_log_)
    out.counter("brubeck_access_log_dropped_total",
                "Access log lines dropped: the writer fell behind", {},
                static_cast<double>(access_log_->dropped()));
  return out.text();
}

void App::serve_metrics(WebMessageHandler& h) const {
  // The run loop holds the shards' list only for moments, except while it
  // replaces a dead shard: wait for it, a little, without blocking the shard.
  for (int attempt = 0; attempt < 200; ++attempt) {
    if (auto text = metrics_text()) {
      h.set_header("Content-Type", kMetricsContentType);
      h.set_header("Cache-Control", "no-store");
      h.set_body(std::move(*text));
      return;
    }
    this_fiber::sleep_for(std::chrono::milliseconds(10));
  }
  h.set_status(503);
  h.set_header("Retry-After", "1");
  h.set_body("metrics unavailable: shards are being replaced\n");
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

// The pattern matching exactly `path` (the health and metrics routes).
std::string exact_pattern(const std::string& path) {
  // Appended, not `"^" + ... + "$"`: GCC 12 warns falsely (-Wrestrict) there.
  std::string pattern = "^";
  pattern += RE2::QuoteMeta(path);
  pattern += '$';
  return pattern;
}

// The health route's reply: the readiness fact as JSON, never cached.
RouteSpec health_route(const std::string& path, const App& app) {
  return function_route(exact_pattern(path), {Method::get}, [&app](WebMessageHandler& h) {
    const auto health = app.health();
    h.set_status(health.ready() ? 200 : 503);
    h.set_header("Cache-Control", "no-store");
    h.set_json(nlohmann::ordered_json{{"status", to_string(health.status)},
                                      {"shards", health.shards},
                                      {"alive", health.alive},
                                      {"subscribed", health.subscribed}});
  });
}

// `text` with every `token` replaced by `value`.
std::string replace_all(std::string text, std::string_view token, std::string_view value) {
  for (auto at = text.find(token); at != std::string::npos;
       at = text.find(token, at + value.size()))
    text.replace(at, token.size(), value);
  return text;
}

std::string html_escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// The live page's routes: the page at `path`, charting `metrics`, and
// uPlot's script and style under it (503 naming the fix when the library
// was built without them).
void add_live_routes(std::vector<RouteSpec>& routes, const std::string& path,
                     const std::string& metrics) {
  std::string base = path;
  if (base.ends_with('/')) base.pop_back();
  auto page = std::make_shared<const std::string>(
      replace_all(replace_all(std::string(live::page), "{{metrics_route}}", html_escape(metrics)),
                  "{{live_route}}", html_escape(base)));
  routes.push_back(function_route(exact_pattern(path), {Method::get}, [page](WebMessageHandler& h) {
    h.set_header("Content-Type", "text/html; charset=utf-8");
    h.set_body(*page);
  }));
  auto file = [](std::string_view body, std::string_view type) {
    return [body, type](WebMessageHandler& h) {
      if (body.empty()) {
        h.set_status(503);
        h.set_header("Content-Type", "text/plain; charset=utf-8");
        h.set_body(std::string(live::missing));
        return;
      }
      h.set_header("Content-Type", type);
      h.set_header("Cache-Control", "max-age=3600");
      h.set_body(std::string(body));
    };
  };
  routes.push_back(function_route(exact_pattern(base + "/uplot.js"), {Method::get},
                                  file(live::uplot_js, "text/javascript; charset=utf-8")));
  routes.push_back(function_route(exact_pattern(base + "/uplot.css"), {Method::get},
                                  file(live::uplot_css, "text/css; charset=utf-8")));
}

// The last signal a thread outside run()'s mask caught (see below).
std::atomic<int> caught_signal{0};
extern "C" void catch_run_signal(int sig) { caught_signal.store(sig); }

// The signals run() takes: SIGINT/SIGTERM drain and stop, SIGHUP reopens the
// access log (systemd's ExecReload).
constexpr int kRunSignals[] = {SIGINT, SIGTERM, SIGHUP};

// Blocks kRunSignals in the calling thread, and so in every thread it starts
// (CAF's, ZeroMQ's, the shards', the access log's), so only run()'s wait
// takes them.
// Threads the application started before run() (a database's, a template
// reloader's) do not block them: while run()'s thread is between two waits
// the kernel hands the signal to one of those, whose default action would
// end the process without a drain. A handler catches it there instead, and
// the next wait returns it.
class SignalMask {
 public:
  SignalMask() {
    sigemptyset(&set_);
    for (int sig : kRunSignals) sigaddset(&set_, sig);
    pthread_sigmask(SIG_BLOCK, &set_, &old_);
    struct sigaction action {};
    action.sa_handler = catch_run_signal;
    sigemptyset(&action.sa_mask);
    for (std::size_t k = 0; k < std::size(kRunSignals); ++k)
      sigaction(kRunSignals[k], &action, &old_actions_[k]);
  }
  ~SignalMask() {
    for (std::size_t k = 0; k < std::size(kRunSignals); ++k)
      sigaction(kRunSignals[k], &old_actions_[k], nullptr);
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
  struct sigaction old_actions_[std::size(kRunSignals)]{};
};

}  // namespace

int App::run() {
  std::vector<RouteSpec> routes;
  try {
    configure_logging(config_.log_level);
    // The health, metrics and live routes come first: no route of the application
    // (a catch-all) shadows them.
    if (!config_.health_route.empty()) routes.push_back(health_route(config_.health_route, *this));
    if (!config_.metrics_route.empty())
      routes.push_back(function_route(exact_pattern(config_.metrics_route), {Method::get},
                                      [this](WebMessageHandler& h) { serve_metrics(h); }));
    if (!config_.live_route.empty()) {
      // load_config checks this too; a Config built in code is checked here.
      if (config_.metrics_route.empty())
        throw std::runtime_error("live_route = \"" + config_.live_route +
                                 "\" needs metrics_route (the page charts what it serves)");
      add_live_routes(routes, config_.live_route, config_.metrics_route);
    }
    routes.insert(routes.end(), routes_.begin(), routes_.end());
    route_labels_.clear();
    for (const auto& r : routes) route_labels_.push_back(r.pattern);
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
      // Observation: the access log's writer thread starts here, after
      // the signal mask (SIGHUP is run()'s to take).
      if (!config_.access_log.empty())
        access_log_ = std::make_shared<AccessLog>(
            config_.access_log, parse_access_log_format(config_.access_log_format),
            config_.access_log_sample);
      base.access_log = access_log_;
      base.metrics = !config_.metrics_route.empty();
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
      access_log_.reset();
      return 2;
    }
    spdlog::info("brubeck: serving with {} shards; pulling from {}, replying to {}",
                 config_.shard_count(), fmt::join(config_.send_specs, ", "),
                 fmt::join(config_.recv_specs, ", "));
    {
      std::lock_guard lock(supervisor_mutex_);
      supervisor_ = &supervisor;
      router_ = router.get();
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
      if (int sig = signals.wait(100); sig == SIGHUP) {
        // Log rotation (systemd's ExecReload): nothing stops or drains.
        if (access_log_) {
          try {
            access_log_->reopen();
            spdlog::info("brubeck: SIGHUP received, access log opened again");
          } catch (const std::exception& e) {
            spdlog::error("brubeck: SIGHUP: {}; the access log goes on to the old file", e.what());
          }
        } else {
          spdlog::info("brubeck: SIGHUP received; no access log to open again");
        }
      } else if (sig != 0) {
        spdlog::info("brubeck: {} received, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
        break;
      }
      // What the writer holds reaches the file within about 100 ms.
      if (access_log_) access_log_->flush();
      std::lock_guard lock(supervisor_mutex_);
      supervisor.restart_failed();
      check_shards(false);
    }
    check_shards(true);  // not ready from here on (and STOPPING=1)
    {
      std::lock_guard lock(supervisor_mutex_);
      supervisor_ = nullptr;
      router_ = nullptr;
    }
    live_router = nullptr;
    if (router) router->stop();
    supervisor.drain(config_.grace, [&] { check_shards(true); });
    running_.store(false);
    set_health(Readiness::stopped, 0, 0);
    access_log_.reset();  // after the shards: their last lines are written
    code = failed_.load() ? 1 : 0;
  }
  spdlog::info("brubeck: stopped");
  return code;
}

}  // namespace brubeck
