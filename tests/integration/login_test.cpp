// The demo's login (Brubeck's demo_login) through a real Mongrel2: the
// private page sends a stranger to the login form, the form needs its CSRF
// token, a wrong password is refused, the right one opens a session that
// every shard (fresh connections) and a restarted demo (sessions in SQLite)
// recognise, and logout ends it for good. With sessions in Redis, two demo
// processes (each behind its own Mongrel2, as on two hosts) share them.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <thread>

#include "harness.hpp"
#include "support/redis_server.hpp"

namespace brubeck::testing {
namespace {

// The cookies replies set, sent back as a browser would.
struct CookieJar {
  std::map<std::string, std::string> cookies;

  void take(const HttpResponse& r) {
    for (const auto& [k, v] : r.headers) {
      if (k != "Set-Cookie") continue;
      auto eq = v.find('='), semi = v.find(';');
      auto name = v.substr(0, eq);
      if (v.find("Max-Age=0") != std::string::npos)
        cookies.erase(name);
      else
        cookies[name] = v.substr(eq + 1, semi - eq - 1);
    }
  }
  Headers headers() const {
    std::string line;
    for (const auto& [k, v] : cookies) line += (line.empty() ? "" : "; ") + k + "=" + v;
    return line.empty() ? Headers{} : Headers{{"Cookie", line}};
  }
};

// The value of the form's hidden _xsrf field.
std::string form_token(const std::string& html) {
  const std::string field = R"(name="_xsrf" value=")";
  auto at = html.find(field);
  if (at == std::string::npos) return {};
  at += field.size();
  return html.substr(at, html.find('"', at) - at);
}

// Form encoding of what the demo's forms hold (tokens: hex and '|').
std::string form_value(const std::string& v) {
  std::string out;
  for (char c : v)
    out += c == '|' ? std::string("%7C") : c == '/' ? std::string("%2F") : std::string(1, c);
  return out;
}

class DemoLogin : public ::testing::Test {
 protected:
  void SetUp() override {
    m2_.start();
    start_demo();
  }
  void TearDown() override {
    if (demo_.running()) {
      EXPECT_EQ(demo_.stop(SIGTERM), 0) << demo_.output();
    }
    if (HasFailure()) std::cerr << "--- demo output:\n" << demo_.output() << "\n";
  }
  // The demo with sessions in SQLite, or in the Redis at `redis_port`.
  void start_demo(ChildProcess& demo, int redis_port = 0) { start_demo(demo, m2_, redis_port); }
  void start_demo(ChildProcess& demo, Mongrel2Server& m2, int redis_port) {
    // (--log-level debug: each shard logs the requests it takes.)
    std::vector<std::string> args{"--send-spec",
                                  m2.send_spec(),
                                  "--recv-spec",
                                  m2.recv_spec(),
                                  "--shards",
                                  "2",
                                  "--no-pin",
                                  "--log-level",
                                  "debug",
                                  "--cookie-secret",
                                  "test-secret-0123456789abcdef",
                                  "--users-sqlite",
                                  data_.path() + "/users.db",
                                  "--session-store",
                                  redis_port ? "redis" : "sqlite"};
    if (redis_port)
      args.insert(args.end(), {"--session-redis", "127.0.0.1:" + std::to_string(redis_port)});
    else
      args.insert(args.end(), {"--session-sqlite", data_.path() + "/sessions.db"});
    demo.start(binary_path("examples/brubeck_demo"), args, demo_options({}));
    // Another process may already answer: wait for this one's own word.
    auto deadline = std::chrono::steady_clock::now() + 15s;
    while (demo.output().find("brubeck: serving") == std::string::npos) {
      ASSERT_TRUE(demo.running()) << demo.output();
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << demo.output();
      std::this_thread::sleep_for(10ms);
    }
    wait_for_handler(m2.http_port(), "/", &demo);
  }
  void start_demo() { start_demo(demo_); }

  // Fetches the form, then logs in as the demo user.
  std::string log_in() {
    auto form = send("GET", "/login");
    auto token = form_token(form.body);
    EXPECT_EQ(
        send("POST", "/login", "_xsrf=" + form_value(token) + "&name=demo&password=take-five-demo")
            .status,
        303);
    return token;
  }
  // One request on a fresh connection (so the shards take turns), cookies
  // from and to the jar.
  HttpResponse send(const std::string& method, const std::string& path,
                    const std::string& form = {}, int port = 0) {
    HttpConnection c(port ? port : m2_.http_port());
    auto headers = jar_.headers();
    if (!form.empty()) headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
    auto r = c.request(method, path, headers, form);
    jar_.take(r);
    return r;
  }

  TempDir data_{"brubeck-login"};
  Mongrel2Server m2_;
  ChildProcess demo_;
  CookieJar jar_;
};

TEST_F(DemoLogin, LoginSeeThePrivatePageLogout) {
  auto r = send("GET", "/private");
  EXPECT_EQ(r.status, 302);
  EXPECT_EQ(r.header("Location"), "/login?next=%2Fprivate");

  auto form = send("GET", "/login?next=/private");
  EXPECT_EQ(form.status, 200);
  auto token = form_token(form.body);
  ASSERT_FALSE(token.empty()) << form.body;
  ASSERT_TRUE(jar_.cookies.contains("_xsrf"));

  // No token: 403, and nothing else happens.
  EXPECT_EQ(send("POST", "/login", "name=demo&password=take-five-demo").status, 403);
  EXPECT_FALSE(jar_.cookies.contains("session"));

  auto wrong =
      send("POST", "/login", "_xsrf=" + form_value(token) + "&name=demo&password=take-six");
  EXPECT_EQ(wrong.status, 200);
  EXPECT_NE(wrong.body.find("Wrong name or password."), std::string::npos) << wrong.body;
  EXPECT_FALSE(jar_.cookies.contains("session"));

  auto right = send("POST", "/login",
                    "_xsrf=" + form_value(token) +
                        "&name=demo&password=take-five-demo&next=" + form_value("/private"));
  EXPECT_EQ(right.status, 303);
  EXPECT_EQ(right.header("Location"), "/private");
  ASSERT_TRUE(jar_.cookies.contains("session"));

  // Fresh connections: both shards know the session.
  for (int i = 0; i < 4; ++i) {
    auto page = send("GET", "/private");
    EXPECT_EQ(page.status, 200);
    EXPECT_NE(page.body.find("Hello, <b>demo</b>"), std::string::npos) << page.body;
  }

  // Sessions in SQLite outlive the process.
  EXPECT_EQ(demo_.stop(SIGTERM), 0) << demo_.output();
  start_demo();
  auto after_restart = send("GET", "/private");
  EXPECT_EQ(after_restart.status, 200) << after_restart.body;

  auto session_cookie = jar_.cookies["session"];
  auto logout = send("POST", "/logout", "_xsrf=" + form_value(form_token(after_restart.body)));
  EXPECT_EQ(logout.status, 303);
  EXPECT_EQ(logout.header("Location"), "/login");
  EXPECT_FALSE(jar_.cookies.contains("session"));
  EXPECT_EQ(send("GET", "/private").status, 302);
  // The old cookie, replayed, finds no session.
  jar_.cookies["session"] = session_cookie;
  EXPECT_EQ(send("GET", "/private").status, 302);
}

TEST_F(DemoLogin, TwoProcessesShareSessionsInRedis) {
  RedisServer redis;
  // The SQLite demo of SetUp gives way to two Redis ones, each behind its
  // own Mongrel2 (two hosts, as a client sees them).
  EXPECT_EQ(demo_.stop(SIGTERM), 0) << demo_.output();
  Mongrel2Server other_m2;
  other_m2.start();
  ChildProcess other;
  start_demo(demo_, redis.port());
  start_demo(other, other_m2, redis.port());
  log_in();
  ASSERT_TRUE(jar_.cookies.contains("session"));
  // The other process knows the session the first one made.
  auto there = send("GET", "/private", {}, other_m2.http_port());
  EXPECT_EQ(there.status, 200) << there.body;
  EXPECT_NE(there.body.find("Hello, <b>demo</b>"), std::string::npos) << there.body;
  EXPECT_GE(count_of(other.output(), "GET /private started"), 1u) << other.output();
  // Logging out there ends it here too (the old cookie, replayed here).
  auto cookie = jar_.cookies["session"];
  EXPECT_EQ(
      send("POST", "/logout", "_xsrf=" + form_value(form_token(there.body)), other_m2.http_port())
          .status,
      303);
  jar_.cookies["session"] = cookie;
  EXPECT_EQ(send("GET", "/private").status, 302);
  EXPECT_EQ(other.stop(SIGTERM), 0) << other.output();
}

}  // namespace
}  // namespace brubeck::testing
