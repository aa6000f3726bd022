// The demo app that deploy/run serves behind Mongrel2: ports of Brubeck's
// demo_minimal, demo_urlargs, demo_noclasses, demo_longpolling (its page at
// /longpoll, its feed at /feed), demo_mustache (/mustache), demo_login
// (/login, /private) and demo_autoapi (its page at /todos, its API at
// /todo/), plus routes that show the shards at work.
#include <brubeck/actors/detail/requester.hpp>
#include <brubeck/apps/autoapi.hpp>
#include <brubeck/brubeck.hpp>
#include <brubeck/drivers/postgres.hpp>
#include <brubeck/drivers/redis.hpp>
#include <brubeck/drivers/sqlite.hpp>
#include <caf/atom.hpp>
#include <caf/event_based_actor.hpp>

#include <cstdio>
#include <cstdlib>

#include <algorithm>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string_view>
#include <utility>
#include <vector>

#include <chrono>
#include <ctime>
#include <stdexcept>
#include <string>

namespace {

using namespace std::chrono_literals;

// demo_minimal. The name is the client's text: sent as text/plain, never
// as HTML, where ?name=<script>... would run in the browser.
class DemoHandler : public brubeck::WebMessageHandler {
 public:
  void get() override {
    set_header("Content-Type", "text/plain; charset=utf-8");
    set_body("Take five, " + get_argument("name", "dude") + "!");
  }
};

class IndexHandler : public brubeck::WebMessageHandler {
 public:
  void get() override { set_body("Take five!"); }
};

// demo_urlargs: a positional group reaches the handler.
class NameHandler : public brubeck::WebMessageHandler {
 public:
  void get() override { set_body("Take five, " + std::string(get_url_arg(0)) + "!"); }
};

// demo_longpolling: the wait suspends this request's fiber only.
class FeedHandler : public brubeck::WebMessageHandler {
 public:
  void get() override {
    brubeck::this_fiber::sleep_for(2s);
    std::time_t now = std::time(nullptr);
    char text[64];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    set_header("Content-Type", "text/plain; charset=utf-8");
    set_body(std::string(text) + "\n");
  }
};

// A page of examples/pages, read once at start-up and shared by the shards
// read-only (the page is the same for every request).
class StaticPageHandler : public brubeck::WebMessageHandler {
 public:
  explicit StaticPageHandler(std::shared_ptr<const std::string> page) : page_(std::move(page)) {}
  void get() override {
    set_header("Content-Type", "text/html; charset=utf-8");
    set_body(*page_);
  }

 private:
  std::shared_ptr<const std::string> page_;
};

// Throws when the page cannot be read: the demo refuses to start without it.
std::shared_ptr<const std::string> read_page(const std::string& folder, const std::string& name) {
  const std::string path = folder + "/" + name;
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in || text.str().empty()) throw std::runtime_error("cannot read " + path);
  return std::make_shared<const std::string>(text.str());
}

class JsonHandler : public brubeck::JSONMessageHandler {
 public:
  void get() override {
    add_to_payload("message", "Take five, " + get_argument("name", "dude") + "!");
  }
};

class ShardHandler : public brubeck::JSONMessageHandler {
 public:
  void get() override {
    hide_status();
    add_to_payload("shard", static_cast<std::int64_t>(message().shard_index()));
    add_to_payload("conn_id", message().conn_id());
  }
};

// demo_mustache: a page from examples/templates/ (deploy/run sets the
// `templates` setting to it). The name is the client's text: the template
// writes it with {{name}}, HTML-escaped, so ?name=<script> shows as text.
class MustacheHandler : public brubeck::PageHandler {
 public:
  void get() override {
    nlohmann::json tags = nlohmann::json::array();
    for (const auto& tag : get_arguments("tag")) tags.push_back({{"tag", tag}});
    render("success", {{"name", get_argument("name", "dude")},
                       {"tags", tags},
                       {"has_tags", !tags.empty()},
                       {"shard", message().shard_index()}});
  }
};

// Fails for GET and POST alike; a POST may bring a body Mongrel2 spooled
// to a file, which must be deleted all the same.
class BoomHandler : public brubeck::WebMessageHandler {
 public:
  void get() override { throw std::runtime_error("boom: this handler always fails"); }
  void post() override { get(); }
};

// Every argument (query string and form body) with all its values, by
// name in sorted order (nlohmann::json's object is a map: 100,000 distinct
// names cost a log each, not a scan each).
class ArgsHandler : public brubeck::WebMessageHandler {
 public:
  void get() override {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [name, value] : arguments()) out[name].push_back(strip(value));
    set_json(out);
  }
  void post() override { get(); }

 private:
  static std::string strip(const std::string& v) {
    auto b = v.find_first_not_of(" \t\r\n\v\f");
    if (b == std::string::npos) return {};
    return v.substr(b, v.find_last_not_of(" \t\r\n\v\f") - b + 1);
  }
};

// The client's headers as JSON (Mongrel2's own upper-case keys left out).
// Header values are bytes as the client sent them; the JSON writer replaces
// what is not UTF-8 with U+FFFD, so the reply is always valid JSON.
class HeadersHandler : public brubeck::WebMessageHandler {
 public:
  void get() override {
    nlohmann::ordered_json out = nlohmann::ordered_json::object();
    for (const auto& h : message().headers()) {
      if (!h.name.empty() && h.name[0] >= 'A' && h.name[0] <= 'Z') continue;
      out[std::string(h.name)] = h.value;
    }
    set_json(out);
  }
};

// One entry per uploaded file; the same for a small inline body and one
// Mongrel2 spooled to disk.
class UploadHandler : public brubeck::WebMessageHandler {
 public:
  void post() override {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const auto& file : files())
      out.push_back({{"field", file.name},
                     {"filename", file.filename.value_or("")},
                     {"content_type", file.content_type},
                     {"size", file.body.size()},
                     {"sha256", brubeck::sha256_hex(file.body)}});
    set_json(out);
  }
};

// The same, but refuses uploads over 1 MiB as soon as Mongrel2 announces
// them, before the body is transferred.
class SmallUploadHandler : public UploadHandler {
 public:
  bool accept_upload(std::size_t content_length) override { return content_length <= 1024 * 1024; }
};

// /cookies/set?NAME=VALUE sets NAME and a signed signed_NAME.
class SetCookiesHandler : public brubeck::WebMessageHandler {
 public:
  void get() override {
    for (const auto& [name, value] : arguments()) {
      // What the client asked for: a name or value a cookie cannot hold is
      // its error, not ours.
      if (!brubeck::is_cookie_name(name) || !brubeck::is_cookie_value(value))
        throw brubeck::HttpError(400, "not a valid cookie name or value: " + name);
      set_cookie(name, value);
      set_secure_cookie("signed_" + name, value);
    }
    set_body("cookies set\n");
  }
};

class CookiesHandler : public brubeck::WebMessageHandler {
 public:
  void get() override {
    nlohmann::ordered_json out = {{"plain", nlohmann::ordered_json::object()},
                                  {"signed", nlohmann::ordered_json::object()}};
    for (auto header : message().header_values("cookie")) {
      for (const auto& [name, value] : brubeck::parse_cookie_header(header)) {
        bool is_signed = name.rfind("signed_", 0) == 0;
        std::optional<std::string> shown = value;
        if (is_signed) shown = get_secure_cookie(name);
        if (!shown) continue;  // a signature that does not check is absent
        out[is_signed ? "signed" : "plain"][name] = *shown;
      }
    }
    set_json(out);
  }
};

// A reply streamed in chunks, with waits between them.
class StreamHandler : public brubeck::WebMessageHandler {
 public:
  void get() override {
    set_header("Content-Type", "text/plain; charset=utf-8");
    start_stream();
    for (int i = 1; i <= 3; ++i) {
      write_chunk("chunk " + std::to_string(i) + "\n");
      brubeck::this_fiber::sleep_for(100ms);
    }
    finish_stream();
  }
};

// The handler returns at once; another fiber answers 300 ms later.
class LaterHandler : public brubeck::WebMessageHandler {
 public:
  void get() override {
    auto reply = std::make_shared<brubeck::DeferredReply>(defer());
    brubeck::FiberHub::current()->spawn([reply] {
      brubeck::this_fiber::sleep_for(300ms);
      brubeck::Response r;
      r.add_header("Content-Type", "text/plain; charset=utf-8");
      r.body = "finished by another fiber\n";
      reply->finish(std::move(r));
    });
  }
};

// Only local paths: an open redirect would be a gift to phishers.
class RedirectHandler : public brubeck::WebMessageHandler {
 public:
  void get() override {
    // ?word=W goes to the "class" route by name (reverse routing).
    if (auto word = get_argument("word"); !word.empty()) {
      try {
        return redirect(url_for("class", {word}));
      } catch (const std::invalid_argument&) {
        throw brubeck::HttpError(400, "not a word");  // the route takes \w+ only
      }
    }
    redirect_local(get_argument("to", "/"));
  }
};

// --- demo_login: a session, a page only a logged-in user sees ------------

// The demo's one account, created at start-up (README: "Login").
constexpr const char* kDemoUser = "demo";
constexpr const char* kDemoPassword = "take-five-demo";

// GET shows the form; POST checks the password (argon2id, off the shard's
// thread), then goes on to ?next= (a local path only) or /private.
class LoginHandler : public brubeck::PageHandler {
 public:
  void get() override { show_form({}); }
  void post() override {
    auto outcome = login(get_argument("name"), get_argument("password"));
    if (outcome) return redirect_local(next(), 303);
    show_form(outcome.kind == brubeck::LoginOutcome::throttled
                  ? "Too many failed logins: try again in " +
                        std::to_string(outcome.retry_after.count()) + " s."
                  : "Wrong name or password.");
  }

 private:
  std::string next() const {
    auto n = get_argument("next", "/private");
    return brubeck::is_local_path(n) ? n : "/private";
  }
  // examples/templates/login.mustache: what the client typed is escaped there.
  void show_form(const std::string& error) {
    nlohmann::json context = {{"xsrf_form", xsrf_form_html()}, {"next", next()}};
    if (!error.empty()) context["error"] = error;
    if (auto user = current_user()) context["user"] = {{"name", user->name}};
    render("login", context);
  }
};

// Only for a logged-in user: anyone else is sent to /login?next=/private.
class PrivateHandler : public brubeck::PageHandler {
 public:
  bool login_required() const override { return true; }
  void get() override {
    set_header("Cache-Control", "no-store");
    render("private", {{"name", current_user()->name}, {"xsrf_form", xsrf_form_html()}});
  }
};

class LogoutHandler : public brubeck::PageHandler {
 public:
  void post() override {
    logout();
    redirect("/login", 303);
  }
};

// --- waiting on other things (issue #4) ----------------------------------

// Where the demo's services are (settings demo.redis and demo.pg, declared in
// main): deploy/run starts Redis and PostgreSQL on loopback and sets them;
// without them those routes answer 503.

// GET lists the notes, POST adds one (`text` argument): SQLite, no server.
class NotesHandler : public brubeck::JSONMessageHandler {
 public:
  explicit NotesHandler(std::shared_ptr<brubeck::SqliteDatabase> db) : db_(std::move(db)) {}
  void get() override {
    auto rows = db_->query("SELECT id, text, created FROM notes ORDER BY id DESC LIMIT 100");
    auto& notes = payload()["notes"] = nlohmann::ordered_json::array();
    for (std::size_t i = 0; i < rows.rows.size(); ++i)
      notes.push_back({{"id", std::stoll(rows.text(i, 0))},
                       {"text", rows.text(i, 1)},
                       {"created", rows.text(i, 2)}});
  }
  void post() override {
    auto text = get_argument("text", "");
    if (text.empty() || text.size() > 1000) throw brubeck::HttpError(400, "text: 1 to 1000 bytes");
    auto r = db_->query("INSERT INTO notes (text) VALUES (?)", {text});
    set_status(201);
    add_to_payload("id", r.last_insert_id);
  }

 private:
  std::shared_ptr<brubeck::SqliteDatabase> db_;
};

// GET /redis/incr?key=K → the new value of counter K.
class RedisIncrHandler : public brubeck::WebMessageHandler {
 public:
  explicit RedisIncrHandler(std::string address) : address_(std::move(address)) {}
  void get() override {
    auto colon = address_.rfind(':');
    if (colon == std::string::npos) throw brubeck::Unavailable("demo.redis is not set");
    auto port = static_cast<std::uint16_t>(std::stoi(address_.substr(colon + 1)));
    auto key = get_argument("key", "demo");
    if (key.empty() || key.size() > 200) throw brubeck::HttpError(400, "key: 1 to 200 bytes");
    auto redis = brubeck::RedisClient::for_this_shard(address_.substr(0, colon), port);
    set_body(std::to_string(redis->incr("brubeck:demo:" + key)));
  }

 private:
  std::string address_;
};

// GET /pg/sleep?ms=N → waits N ms inside PostgreSQL, then answers.
class PgSleepHandler : public brubeck::WebMessageHandler {
 public:
  PgSleepHandler(std::string conninfo, std::size_t pool_size)
      : conninfo_(std::move(conninfo)), pool_size_(pool_size) {}
  void get() override {
    if (conninfo_.empty()) throw brubeck::Unavailable("demo.pg is not set");
    auto ms = get_argument("ms", "100");
    int n = 0;
    try {
      n = std::stoi(ms);
    } catch (const std::exception&) {
      throw brubeck::HttpError(400, "ms: a number");
    }
    if (n < 0 || n > 30000) throw brubeck::HttpError(400, "ms: 0 to 30000");
    auto& pool = brubeck::PgPool::for_this_shard(conninfo_, pool_size_);
    auto r = pool.query("SELECT pg_sleep($1::float8 / 1000), $1::int AS ms", {std::to_string(n)});
    set_body("slept " + std::string(r.get(0, 1).value_or("?")) + " ms in PostgreSQL\n");
  }

 private:
  std::string conninfo_;
  std::size_t pool_size_;
};

// One counter for the whole process, held by an actor every shard asks.
using incr_atom = caf::atom_constant<caf::atom("incr")>;

caf::behavior counter_actor(caf::event_based_actor*) {
  auto n = std::make_shared<std::int64_t>(0);
  return {[n](incr_atom) { return ++*n; }};
}

class CounterHandler : public brubeck::WebMessageHandler {
 public:
  void get() override {
    auto n = brubeck::ask<std::int64_t>(brubeck::named_actor("counter"), 2s, incr_atom::value);
    set_body(std::to_string(n));
  }
};

// Three waits of 300 ms in child fibers: about 300 ms in all, not 900.
class FanoutHandler : public brubeck::JSONMessageHandler {
 public:
  void get() override {
    auto start = brubeck::Clock::now();
    std::vector<brubeck::Joinable<int>> children;
    for (int i = 1; i <= 3; ++i)
      children.push_back(brubeck::spawn([i] {
        brubeck::this_fiber::sleep_for(300ms);
        return i;
      }));
    int sum = 0;
    for (auto& child : children) sum += child.join();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(brubeck::Clock::now() - start);
    add_to_payload("children", 3);
    add_to_payload("sum", sum);
    add_to_payload("elapsed_ms", static_cast<std::int64_t>(ms.count()));
  }
};

// GET /slow?ms=N sleeps N ms under a 1 s route deadline: past it, a 504.
class SlowHandler : public brubeck::WebMessageHandler {
 public:
  void get() override {
    int n = 0;
    try {
      n = std::stoi(get_argument("ms", "2000"));
    } catch (const std::exception&) {
      throw brubeck::HttpError(400, "ms: a number");
    }
    brubeck::this_fiber::sleep_for(std::chrono::milliseconds(std::clamp(n, 0, 60000)));
    set_body("done\n");
  }
};

// demo_autoapi: the Todo model, REST on /todo/ (brubeck/apps/autoapi.hpp)
// and a page at /todos whose JavaScript uses it.
brubeck::Model todo_model() {
  using brubeck::Field;
  return brubeck::Model("todo", {Field::string("text", {.required = true, .max_length = 200}),
                                 Field::boolean("done", {.default_value = false}),
                                 Field::integer("order", {.min = 0, .default_value = 0})});
}

// The demo's own settings, in the framework's table: [demo] in the file,
// BRUBECK_DEMO_* in the environment, --demo-* on the command line.
brubeck::Config demo_settings() {
  brubeck::Config c;
  c.add_setting<std::string>(
      {.name = "demo.redis", .help = "Redis host:port for /redis/incr (none: 503)"});
  c.add_setting<std::string>(
      {.name = "demo.pg", .help = "PostgreSQL conninfo for /pg/sleep (none: 503)"});
  c.add_setting<std::size_t>({.name = "demo.pg_pool",
                              .help = "PostgreSQL connections per shard for /pg/sleep",
                              .default_value = 8,
                              .min = 1,
                              .max = 90});
  c.add_setting<std::string>(
      {.name = "demo.sqlite",
       .help = "SQLite file of /sqlite/notes and /todo/ (:memory: keeps none)",
       .default_value = ":memory:"});
  // The default is this source tree's examples/pages (set by CMake), so the
  // demo finds its pages from any working directory.
  c.add_setting<std::string>({.name = "demo.pages",
                              .help = "folder of the demo's HTML pages (longpoll.html, todos.html)",
                              .default_value = std::string(BRUBECK_DEMO_PAGES)});
  c.add_setting<bool>({.name = "demo.faults",
                       .help = "serve /fault/die (kills its shard) and /fault/spin (tests only)"});
  // GET /healthz: 200 {"status":"ready",...} once Mongrel2 subscribed and
  // every shard is alive, else 503 (health_route = "" turns it off).
  c.health_route = "/healthz";
  // Its metrics, at /metrics: the demo listens on loopback only.
  c.metrics_route = "/metrics";
  // And the live page charting them (uPlot built into the library).
  c.live_route = "/live";
  // Several demos may run side by side (tests): by default nothing on disk.
  c.session_store = "memory";
  c.users_sqlite = ":memory:";
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  auto config = brubeck::load_config(argc, argv, demo_settings());
  // Sessions need a cookie secret: without one given, a random one for this
  // process (sessions then end with it).
  if (config.cookie_secrets.empty()) config.cookie_secrets.push_back(brubeck::new_session_id());
  brubeck::App app{std::move(config)};
  app.route<IndexHandler>(R"(^/$)");
  app.route<DemoHandler>(R"(^/brubeck$)");
  app.route<NameHandler>(R"(^/class/(\w+)$)").named("class");
  // demo_noclasses: a function route with a named group, GET only.
  app.route(R"(^/fun/(?P<name>\w+)$)", {brubeck::Method::get}, [](brubeck::WebMessageHandler& h) {
    h.set_body("Take five, " + std::string(h.get_url_arg("name")) + "!");
  });
  app.route<FeedHandler>(R"(^/feed$)");
  try {
    app.route<StaticPageHandler>(
        R"(^/longpoll$)", read_page(app.setting<std::string>("demo.pages"), "longpoll.html"));
    app.route<StaticPageHandler>(R"(^/todos$)",
                                 read_page(app.setting<std::string>("demo.pages"), "todos.html"));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "brubeck_demo: %s\n", e.what());
    return 2;
  }
  app.route<JsonHandler>(R"(^/json$)");
  app.route<ShardHandler>(R"(^/shard$)");
  app.route<BoomHandler>(R"(^/boom$)");
  app.route<ArgsHandler>(R"(^/args$)");
  app.route<HeadersHandler>(R"(^/headers$)");
  app.route<UploadHandler>(R"(^/upload$)");
  app.route<SmallUploadHandler>(R"(^/upload/small$)");
  app.route<SetCookiesHandler>(R"(^/cookies/set$)");
  app.route<CookiesHandler>(R"(^/cookies$)");
  app.route<RedirectHandler>(R"(^/redirect$)");
  app.route<StreamHandler>(R"(^/stream$)");
  // demo_login: sessions and users as configured (deploy/run keeps both in
  // SQLite files; by default the demo keeps them in memory).
  try {
    brubeck::use_sessions(app);
    brubeck::use_users(app, {{kDemoUser, kDemoPassword}});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "brubeck_demo: cannot set up sessions and users: %s\n", e.what());
    return 2;
  }
  app.route<LoginHandler>(R"(^/login$)");
  app.route<PrivateHandler>(R"(^/private$)");
  app.route<LogoutHandler>(R"(^/logout$)");
  app.route<LaterHandler>(R"(^/later$)");

  // deploy/run keeps the notes and todos in a file under the build tree; by default
  // they live in memory (several demos may run side by side).
  std::shared_ptr<brubeck::SqliteDatabase> notes;
  try {
    notes = brubeck::SqliteDatabase::open(
        app.setting<std::string>("demo.sqlite"),
        "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL, "
        "created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')))");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "brubeck_demo: cannot open the notes database: %s\n", e.what());
    return 2;
  }
  app.route<NotesHandler>(R"(^/sqlite/notes$)", notes);
  brubeck::register_api(app, std::make_shared<brubeck::SqliteQueryset>(notes, todo_model()));
  app.route<RedisIncrHandler>(R"(^/redis/incr$)", app.setting<std::string>("demo.redis"));
  app.route<PgSleepHandler>(R"(^/pg/sleep$)", app.setting<std::string>("demo.pg"),
                            app.setting<std::size_t>("demo.pg_pool"))
      .timeout(35s);
  app.actor("counter", [](caf::actor_system& sys) { return sys.spawn(counter_actor); });
  app.route<CounterHandler>(R"(^/counter$)");
  app.route<FanoutHandler>(R"(^/fanout$)");
  app.route<SlowHandler>(R"(^/slow$)").timeout(1s);
  // Fault injection for tests/integration/faults_test.cpp, only with
  // demo.faults: the shard serving /fault/die ends as if it had crashed
  // (the request itself stays in flight, and is answered 503 on its way out).
  if (app.setting<bool>("demo.faults")) {
    app.route(R"(^/fault/die$)", {brubeck::Method::get}, [](brubeck::WebMessageHandler&) {
      auto& self = brubeck::detail::current_requester();
      caf::anon_send_exit(caf::actor_cast<caf::actor>(&self), caf::exit_reason::kill);
      brubeck::this_fiber::sleep_for(5s);
    });
    // Computes for ?ms=N without waiting: the stall report's subject.
    app.route(R"(^/fault/spin$)", {brubeck::Method::get}, [](brubeck::WebMessageHandler& h) {
      const auto until = std::chrono::steady_clock::now() +
                         std::chrono::milliseconds(std::stoi(h.get_argument("ms", "200")));
      while (std::chrono::steady_clock::now() < until) {
      }
      h.set_body("spun\n");
    });
  }
  // demo_mustache, when the `templates` setting names a folder: its
  // errors/404.mustache then answers every 404.
  if (brubeck::use_templates(app)) app.route<MustacheHandler>(R"(^/mustache$)");
  return app.run();
}
