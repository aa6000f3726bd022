// The demo's login (Brubeck's demo_login) through a real Mongrel2: the
// private page sends a stranger to the login form, the form needs its CSRF
// token, a wrong password is refused, the right one opens a session that
// every shard (fresh connections) and a restarted demo (sessions in SQLite)
// recognise, and logout ends it for good.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "harness.hpp"

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
  void start_demo() {
    demo_.start(binary_path("examples/brubeck_demo"),
                {"--send-spec", m2_.send_spec(), "--recv-spec", m2_.recv_spec(), "--shards", "2",
                 "--no-pin", "--cookie-secret", "test-secret-0123456789abcdef", "--session-store",
                 "sqlite", "--session-sqlite", data_.path() + "/sessions.db", "--users-sqlite",
                 data_.path() + "/users.db"});
    wait_for_handler(m2_.http_port(), "/", &demo_);
  }
  // One request on a fresh connection (so the shards take turns), cookies
  // from and to the jar.
  HttpResponse send(const std::string& method, const std::string& path,
                    const std::string& form = {}) {
    HttpConnection c(m2_.http_port());
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

}  // namespace
}  // namespace brubeck::testing
