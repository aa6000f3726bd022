// The demo's todo API (demo_autoapi: an AutoAPI over SQLite) behind a real
// Mongrel2: the REST round trip a browser's page makes, errors as JSON, and
// the todos still there after the demo restarts on the same file.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "harness.hpp"

namespace brubeck::testing {
namespace {

using Json = nlohmann::json;

HttpResponse call(const DemoServer& server, std::string_view method, std::string_view path,
                  std::string_view body = "") {
  HttpConnection c(server.port());
  Headers headers;
  if (!body.empty()) headers.emplace_back("Content-Type", "application/json");
  return c.request(method, path, headers, body);
}

TEST(TodoApi, AddTickDeleteAndSurviveARestart) {
  TempDir dir("brubeck-autoapi-it");
  const DemoOptions options{.env = {{"BRUBECK_DEMO_SQLITE", dir.path() + "/demo.db"}}};
  auto server = std::make_unique<DemoServer>(options);
  auto call = [&](std::string_view method, std::string_view path, std::string_view body = "") {
    return testing::call(*server, method, path, body);
  };
  auto r = call("GET", "/todo/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "[]");
  EXPECT_EQ(r.header("Content-Type"), "application/json");

  r = call("POST", "/todo/", R"({"text":"Watch more bsg","order":1})");
  EXPECT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.header("Location"), "/todo/1");
  EXPECT_EQ(Json::parse(r.body), Json::parse(R"({"id":1,"text":"Watch more bsg","done":false,
      "order":1})"));
  r = call("POST", "/todo/", R"([{"text":"Watch Blade Runner"},{"text":"Drink coffee"}])");
  EXPECT_EQ(r.status, 201) << r.body;

  r = call("PATCH", "/todo/2", R"({"done":true})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(Json::parse(r.body)["done"], true);
  r = call("DELETE", "/todo/3");
  EXPECT_EQ(r.status, 204);

  r = call("POST", "/todo/", R"({"text":"","order":-1,"done":"no"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Json::parse(r.body)["fields"],
            Json::parse(R"({"done":"must be true or false","order":"must be at least 0"})"));
  r = call("POST", "/todo/", R"({"text":)");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.header("Content-Type"), "application/json");
  EXPECT_EQ(call("GET", "/todo/3").status, 404);
  EXPECT_EQ(call("GET", "/todo/_schema").header("Content-Type"), "application/schema+json");
  r = call("GET", "/manifest.json");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Content-Type"), "application/schema+json");
  EXPECT_EQ(Json::parse(r.body)[0]["title"], "todo");
  EXPECT_EQ(Json::parse(r.body)[0]["required"], Json::parse(R"(["text"])"));

  // The page its JavaScript runs in.
  r = call("GET", "/todos");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("const api = \"/todo/\";"), std::string::npos);

  // The same file after a restart: the todos are still there.
  server->expect_clean_stop();
  server = std::make_unique<DemoServer>(options);
  r = call("GET", "/todo/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(Json::parse(r.body), Json::parse(R"([
      {"id":1,"text":"Watch more bsg","done":false,"order":1},
      {"id":2,"text":"Watch Blade Runner","done":true,"order":0}])"));
  EXPECT_EQ(r.header("X-Total-Count"), "2");
  server->expect_clean_stop();
}

// The todo page in headless chromium: add, tick, delete, a refused todo's
// message, the same list after a reload (tests/browser/todos.mjs).
TEST(Browser, TodoPageAddsTicksDeletesAndKeepsItsTodos) {
  TempDir dir("brubeck-autoapi-browser");
  DemoServer server({.env = {{"BRUBECK_DEMO_SQLITE", dir.path() + "/demo.db"}}});
  expect_browser_script_passes(server, "todos");
  EXPECT_EQ(call(server, "GET", "/todo/").header("X-Total-Count"), "2");
  server.expect_clean_stop();
}

}  // namespace
}  // namespace brubeck::testing
