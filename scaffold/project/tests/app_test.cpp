// The app's handlers tested in process with brubeck's testing kit: the
// requests go through the real routes, templates and session store, without
// Mongrel2.
#include <gtest/gtest.h>
#include <brubeck/testing.hpp>

#include "app.hpp"

namespace {

brubeck::Config test_config() {
  brubeck::Config c;
  c.templates = TEMPLATES_DIR;
  c.session_store = "memory";
  c.cookie_secrets = {"a test secret, not the one in production"};
  return c;
}

TEST(Home, GreetsByName) {
  brubeck::App app{test_config()};
  @NAME@::setup(app);
  brubeck::testing::TestClient client(app);
  auto r = client.get("/?name=<Ada>");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.header("content-type").find("text/html"), std::string::npos);
  // The template escapes what the client sent.
  EXPECT_NE(r.body.find("Hello, &lt;Ada&gt;!"), std::string::npos) << r.body;
}

TEST(Home, CountsVisitsInTheSession) {
  brubeck::App app{test_config()};
  @NAME@::setup(app);
  brubeck::testing::TestClient browser(app);
  EXPECT_NE(browser.get("/").body.find("<span id=\"visits\">1</span>"), std::string::npos);
  EXPECT_TRUE(browser.cookies().contains("session"));
  EXPECT_NE(browser.get("/").body.find("<span id=\"visits\">2</span>"), std::string::npos);
  // Another browser (its own cookie jar) has its own session.
  brubeck::testing::TestClient other(app);
  EXPECT_NE(other.get("/").body.find("<span id=\"visits\">1</span>"), std::string::npos);
}

TEST(Home, UnknownPathIsNotFound) {
  brubeck::App app{test_config()};
  @NAME@::setup(app);
  brubeck::testing::TestClient client(app);
  EXPECT_EQ(client.get("/nowhere").status, 404);
}

}  // namespace
