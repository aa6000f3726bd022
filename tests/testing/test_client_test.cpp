// The testing kit itself: a TestClient reaches an App's routes in process,
// through the same dispatch a shard runs, on a real fiber hub, with a cookie
// jar that carries signed cookies, sessions, logins and CSRF tokens from one
// request to the next.
#include <brubeck/testing.hpp>

#include <gtest/gtest.h>

#include <brubeck/brubeck.hpp>

#include <fstream>
#include <stdexcept>
#include <string>

#include "support/process.hpp"

namespace brubeck {
namespace {

using namespace std::chrono_literals;
using testing::TestClient;

class Hello : public WebMessageHandler {
 public:
  void get() override {
    set_header("Content-Type", "text/plain; charset=UTF-8");
    add_header("X-Seen-Agent", std::string(request().header_or("User-Agent", "none")));
    set_body("hello " + get_argument("name", "world"));
  }
};

class Echo : public WebMessageHandler {
 public:
  void post() override {
    nlohmann::json out;
    out["method"] = request().method();
    out["content_type"] = request().content_type();
    out["body"] = request().body();
    out["x_custom"] = request().header_or("x-custom", "");
    out["remote"] = request().remote_addr();
    out["url"] = request().full_url();
    nlohmann::json args = nlohmann::json::object();
    for (const auto& [k, v] : arguments()) args[k] = v;
    out["args"] = args;
    nlohmann::json files = nlohmann::json::array();
    for (const auto& f : this->files())
      files.push_back({{"name", std::string(f.name)},
                       {"filename", f.filename.value_or("")},
                       {"content", std::string(f.body)}});
    out["files"] = files;
    set_json(out);
  }
  void put() override { post(); }
  void patch() override { post(); }
  void delete_() override { set_status(204); }
};

class Items : public ApiHandler {
 public:
  void post() override {
    auto doc = nlohmann::json::parse(request().body(), nullptr, false);
    if (!doc.is_object() || !doc.contains("name")) throw HttpError(400, "bad item");
    set_status(201);
    add_to_payload("name", doc["name"].get<std::string>());
  }
};

class Boom : public WebMessageHandler {
 public:
  void get() override { throw std::runtime_error("kaboom"); }
};

class Streamed : public WebMessageHandler {
 public:
  void get() override {
    set_header("Content-Type", "text/plain");
    start_stream();
    for (int i = 0; i < 3; ++i) {
      write_chunk("part" + std::to_string(i) + ";");
      this_fiber::sleep_for(1ms);
    }
  }
};

// Answered by another fiber a moment later, as a long poll would be.
class Later : public WebMessageHandler {
 public:
  void get() override {
    auto reply = std::make_shared<DeferredReply>(defer());
    FiberHub::current()->spawn([reply] {
      this_fiber::sleep_for(5ms);
      Response r;
      r.status = 202;
      r.body = "done later";
      reply->finish(std::move(r));
    });
  }
};

class Never : public WebMessageHandler {
 public:
  void get() override { this_fiber::sleep_for(1h); }
};

class Jump : public WebMessageHandler {
 public:
  void get() override { redirect(get_argument("to", "/hello?name=jumped")); }
  void post() override { redirect("/hello?name=posted", 302); }
};

class Loop : public WebMessageHandler {
 public:
  void get() override { redirect("/loop"); }
};

class Signed : public WebMessageHandler {
 public:
  void get() override {
    if (get_argument("set") == "1") {
      set_secure_cookie("who", "ada");
      set_cookie("plain", "p1");
      CookieOptions deep;
      deep.path = "/signed/deep";
      set_cookie("scoped", "s1", deep);
    }
    if (get_argument("forget") == "1") delete_cookie("plain");
    set_body(get_secure_cookie("who").value_or("nobody") + "|" + get_cookie("plain", "-") + "|" +
             get_cookie("scoped", "-"));
  }
};

class Counter : public PageHandler {
 public:
  void get() override {
    int n = session().get("n", 0).get<int>() + 1;
    session()["n"] = n;
    set_body(std::to_string(n));
  }
};

class Form : public PageHandler {
 public:
  void get() override { set_body(xsrf_form_html()); }
  void post() override { set_body("posted " + get_argument("text")); }
};

class Templated : public PageHandler {
 public:
  void get() override { render("hello", {{"name", get_argument("name", "you")}}); }
};

class LoginPage : public PageHandler {
 public:
  void get() override { set_body(xsrf_form_html()); }
  void post() override {
    if (login(get_argument("name"), get_argument("password")))
      redirect_local(get_argument("next", "/"), 303);
    else
      set_body("wrong");
  }
};

class Private : public PageHandler {
 public:
  bool login_required() const override { return true; }
  void get() override { set_body("hello " + current_user()->name); }
};

class TestClientTest : public ::testing::Test {
 protected:
  TestClientTest() {
    config_.cookie_secrets = {"0123456789abcdef0123456789"};
    config_.session_store = "memory";
    config_.users_sqlite = dir_.path() + "/users.db";
    config_.templates = dir_.path() + "/templates";
    std::filesystem::create_directories(config_.templates + "/errors");
    std::ofstream(config_.templates + "/hello.mustache") << "<p>Hello, {{name}}!</p>";
    std::ofstream(config_.templates + "/errors/404.mustache") << "<h1>Lost: {{status}}</h1>";
  }

  // The app as a test would build it: routes, then services.
  std::unique_ptr<App> make_app() {
    auto app = std::make_unique<App>(config_);
    app->route<Hello>("^/hello$");
    app->route<Echo>("^/echo$");
    app->route<Items>("^/api/items$");
    app->route<Boom>("^/boom$");
    app->route<Streamed>("^/stream$");
    app->route<Later>("^/later$");
    app->route<Never>("^/never$").timeout(50ms);
    app->route<Never>("^/forever$").timeout(0ms);
    app->route<Jump>("^/jump$");
    app->route<Loop>("^/loop$");
    app->route<Signed>("^/signed");
    app->route<Counter>("^/count$");
    app->route<Form>("^/form$");
    app->route<Templated>("^/page$");
    app->route<LoginPage>("^/login$");
    app->route<Private>("^/private$");
    use_sessions(*app);
    use_templates(*app);
    use_users(*app, {{"ada", "take-five"}});
    return app;
  }

  ::brubeck::testing::TempDir dir_{"brubeck-testkit"};
  Config config_;
};

TEST_F(TestClientTest, GetWithQueryStatusHeadersAndBody) {
  auto app = make_app();
  TestClient client(*app);
  auto r = client.get("/hello?name=x");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.reason, "OK");
  EXPECT_EQ(r.body, "hello x");
  // Header names compare without regard to case.
  EXPECT_EQ(r.header("content-type"), "text/plain; charset=UTF-8");
  EXPECT_EQ(r.header("CONTENT-LENGTH"), "7");
  EXPECT_FALSE(r.has_header("X-Missing"));
  EXPECT_EQ(r.header("X-Missing"), "");
  EXPECT_TRUE(r.raw.starts_with("HTTP/1.1 200 OK\r\n")) << r.raw;
  EXPECT_FALSE(r.streamed);
  EXPECT_FALSE(r.closed);
  // Request headers reach the handler (Mongrel2 lower-cases them).
  EXPECT_EQ(client.get("/hello", {{"User-Agent", "kit/1"}}).header("X-Seen-Agent"), "kit/1");
  // Percent-encoded query arguments are decoded.
  EXPECT_EQ(client.get("/hello?name=a%20b+c").body, "hello a b c");
}

TEST_F(TestClientTest, RoutingErrorsAndErrorPages) {
  auto app = make_app();
  TestClient client(*app);
  auto missing = client.get("/nowhere");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.body, "<h1>Lost: 404</h1>");  // the templates' error page
  auto wrong = client.post("/hello");
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(wrong.header("Allow"), "GET, HEAD, OPTIONS");
  EXPECT_EQ(client.get("/boom").status, 500);
  auto options = client.options("/echo");
  EXPECT_EQ(options.status, 204);
  EXPECT_EQ(options.header("Allow"), "POST, PUT, PATCH, DELETE, OPTIONS");
  EXPECT_EQ(client.delete_("/echo").status, 204);
  // HEAD: the length of the body GET would send, and no body.
  auto head = client.head("/hello?name=x");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.header("Content-Length"), "7");
  EXPECT_EQ(head.body, "");
  EXPECT_THROW(client.get("no-slash"), std::invalid_argument);
}

TEST_F(TestClientTest, FormJsonMultipartAndRawBodies) {
  auto app = make_app();
  TestClient client(*app, {.remote_addr = "10.1.2.3", .host = "example.test"});
  auto form = client.post_form("/echo", {{"a", "1 & 2"}, {"b", "é"}}, {{"X-Custom", "yes"}});
  ASSERT_EQ(form.status, 200) << form.body;
  auto doc = form.json();
  EXPECT_EQ(doc["content_type"], "application/x-www-form-urlencoded");
  EXPECT_EQ(doc["args"]["a"], "1 & 2");
  EXPECT_EQ(doc["args"]["b"], "é");
  EXPECT_EQ(doc["x_custom"], "yes");
  EXPECT_EQ(doc["remote"], "10.1.2.3");
  EXPECT_EQ(doc["url"], "http://example.test/echo");

  auto json = client.put_json("/echo", {{"name", "a"}, {"n", 2}});
  EXPECT_EQ(json.json()["method"], "PUT");
  EXPECT_EQ(json.json()["content_type"], "application/json");
  EXPECT_EQ(nlohmann::json::parse(json.json()["body"].get<std::string>()),
            (nlohmann::json{{"name", "a"}, {"n", 2}}));

  auto created = client.post_json("/api/items", {{"name", "a"}});
  EXPECT_EQ(created.status, 201);
  EXPECT_EQ(created.json()["name"], "a");
  // A body the handler cannot parse as JSON: the handler's 400, not a crash.
  EXPECT_EQ(client.post("/api/items", "{not json", {{"Content-Type", "application/json"}}).status,
            400);

  auto multipart = client.post_multipart(
      "/echo", {{"title", "notes"}}, {{"upload", "a.txt", "file body\r\nline 2", "text/plain"}});
  ASSERT_EQ(multipart.status, 200) << multipart.body;
  auto m = multipart.json();
  EXPECT_EQ(m["args"]["title"], "notes");
  ASSERT_EQ(m["files"].size(), 1u);
  EXPECT_EQ(m["files"][0]["name"], "upload");
  EXPECT_EQ(m["files"][0]["filename"], "a.txt");
  EXPECT_EQ(m["files"][0]["content"], "file body\r\nline 2");

  auto patched = client.patch("/echo", "raw bytes", {{"Content-Type", "text/plain"}});
  EXPECT_EQ(patched.json()["body"], "raw bytes");
  EXPECT_THROW(client.get("/hello").json(), std::runtime_error);
}

TEST_F(TestClientTest, StreamedAndDeferredRepliesAreReadWhole) {
  auto app = make_app();
  TestClient client(*app);
  auto s = client.get("/stream");
  EXPECT_EQ(s.status, 200);
  EXPECT_TRUE(s.streamed);
  EXPECT_EQ(s.header("Transfer-Encoding"), "chunked");
  EXPECT_EQ(s.body, "part0;part1;part2;");
  EXPECT_TRUE(s.raw.ends_with("0\r\n\r\n"));

  auto later = client.get("/later");
  EXPECT_TRUE(later.deferred);
  EXPECT_EQ(later.status, 202);
  EXPECT_EQ(later.body, "done later");

  // The route's deadline applies as on a shard.
  EXPECT_EQ(client.get("/never").status, 504);
  // A request that never answers fails the test's call instead of hanging it.
  client.options().timeout = 100ms;
  EXPECT_THROW(client.get("/forever"), std::runtime_error);
  // ...and the client serves the next request after it.
  EXPECT_EQ(client.get("/hello").status, 200);
}

TEST_F(TestClientTest, RedirectsFollowedOnRequest) {
  auto app = make_app();
  TestClient client(*app);
  auto r = client.get("/jump");
  EXPECT_EQ(r.status, 302);
  EXPECT_EQ(r.header("Location"), "/hello?name=jumped");
  EXPECT_TRUE(r.redirects.empty());

  client.follow_redirects(true);
  r = client.get("/jump");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "hello jumped");
  EXPECT_EQ(r.target, "/hello?name=jumped");
  EXPECT_EQ(r.redirects, std::vector<std::string>{"/jump"});
  // A 302 after a POST becomes a GET; absolute URLs keep only their path.
  EXPECT_EQ(client.post("/jump", "x=1").body, "hello posted");
  EXPECT_EQ(client.get("/jump?to=http%3A%2F%2Fexample.test%2Fhello%3Fname%3Dabs").body,
            "hello abs");
  // Per request, whatever the client's setting.
  testing::TestRequest once{.method = "GET", .target = "/jump", .follow_redirects = false};
  EXPECT_EQ(client.fetch(once).status, 302);
  // Relative locations resolve against the request's path.
  EXPECT_EQ(client.get("/jump?to=hello%3Fname%3Drel").body, "hello rel");
  // A loop ends with an error, not a hang.
  EXPECT_THROW(client.get("/loop"), std::runtime_error);
}

TEST_F(TestClientTest, TheJarKeepsSignedCookiesAndHonoursPathAndDeletion) {
  auto app = make_app();
  TestClient client(*app);
  EXPECT_EQ(client.get("/signed").body, "nobody|-|-");
  EXPECT_EQ(client.get("/signed?set=1").body, "nobody|-|-");  // set now, sent from the next
  ASSERT_TRUE(client.cookies().contains("who"));
  EXPECT_NE(client.cookies().value("who"), "ada");  // signed, not plain
  EXPECT_EQ(client.get("/signed").body, "ada|p1|-");
  EXPECT_EQ(client.get("/signed/deep/x").body, "ada|p1|s1");  // under the cookie's Path
  EXPECT_EQ(client.get("/signed?forget=1").body, "ada|p1|-");
  EXPECT_FALSE(client.cookies().contains("plain"));
  EXPECT_EQ(client.get("/signed").body, "ada|-|-");
  // A tampered signed cookie reads as absent; a planted plain one is sent.
  client.cookies().set("who", client.cookies().value("who") + "x");
  client.cookies().set("plain", "planted");
  EXPECT_EQ(client.get("/signed").body, "nobody|planted|-");
  // A Cookie header given with the request replaces the jar's.
  EXPECT_EQ(client.get("/signed", {{"Cookie", "plain=given"}}).body, "nobody|given|-");
  // Two clients have two jars.
  TestClient other(*app);
  EXPECT_EQ(other.get("/signed").body, "nobody|-|-");
}

TEST_F(TestClientTest, SessionsAndTemplatesFromTheAppsServices) {
  auto app = make_app();
  TestClient client(*app);
  EXPECT_EQ(client.get("/count").body, "1");
  EXPECT_EQ(client.get("/count").body, "2");
  TestClient stranger(*app);
  EXPECT_EQ(stranger.get("/count").body, "1");
  EXPECT_EQ(client.get("/count").body, "3");
  auto page = client.get("/page?name=<b>");
  EXPECT_EQ(page.body, "<p>Hello, &lt;b&gt;!</p>");
  EXPECT_EQ(page.header("Content-Type"), "text/html; charset=utf-8");
}

TEST_F(TestClientTest, PageFormsNeedTheXsrfTokenFromTheJar) {
  auto app = make_app();
  TestClient client(*app);
  EXPECT_EQ(client.xsrf_token(), "");
  EXPECT_EQ(client.post_form("/form", {{"text", "hi"}}).status, 403);
  client.get("/form");  // the page sets the _xsrf cookie
  ASSERT_FALSE(client.xsrf_token().empty());
  EXPECT_EQ(client.post_form("/form", {{"text", "hi"}, {"_xsrf", client.xsrf_token()}}).body,
            "posted hi");
  EXPECT_EQ(client.post("/form", "", {{"X-XSRFToken", client.xsrf_token()}}).status, 200);
  EXPECT_EQ(client.post_form("/form", {{"text", "hi"}, {"_xsrf", "wrong"}}).status, 403);
}

TEST_F(TestClientTest, LoggingInReachesAPageThatNeedsAUser) {
  auto app = make_app();
  TestClient client(*app);
  auto r = client.get("/private");
  EXPECT_EQ(r.status, 302);
  EXPECT_EQ(r.header("Location"), "/login?next=%2Fprivate");
  client.get("/login");
  EXPECT_EQ(client
                .post_form("/login",
                           {{"name", "ada"}, {"password", "wrong"}, {"_xsrf", client.xsrf_token()}})
                .body,
            "wrong");
  client.follow_redirects(true);
  r = client.post_form("/login", {{"name", "ada"},
                                  {"password", "take-five"},
                                  {"next", "/private"},
                                  {"_xsrf", client.xsrf_token()}});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "hello ada");
  EXPECT_EQ(r.redirects, std::vector<std::string>{"/login"});
  EXPECT_TRUE(client.cookies().contains("session"));
}

// Without an App: a route table and settings, as a shard gets them.
TEST(TestClientRoutes, ServesRouteSpecsAndRunsFiberCode) {
  auto settings = std::make_shared<HandlerSettings>();
  TestClient client(
      {class_route<Hello>("^/hello$"),
       function_route("^/fn/(?P<x>\\w+)$", {Method::get},
                      [](WebMessageHandler& h) { h.set_body(std::string(h.get_url_arg("x"))); })},
      settings);
  EXPECT_EQ(client.get("/hello?name=y").body, "hello y");
  EXPECT_EQ(client.get("/fn/abc").body, "abc");
  bool ran = false;
  client.run([&] {
    this_fiber::sleep_for(1ms);
    ran = FiberHub::current() != nullptr;
  });
  EXPECT_TRUE(ran);
  EXPECT_THROW(client.run([] { throw std::logic_error("escaped"); }), std::logic_error);
}

}  // namespace
}  // namespace brubeck
