// The demo's todo API (demo_autoapi: an AutoAPI over SQLite) behind a real
// Mongrel2: the REST round trip a browser's page makes, errors as JSON, and
// the todos still there after the demo restarts on the same file.
#include <gtest/gtest.h>

#include <csignal>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "harness.hpp"

namespace brubeck::testing {
namespace {

using Json = nlohmann::json;

class TodoApi : public ::testing::Test {
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
                 "--no-pin"},
                demo_options({{"BRUBECK_DEMO_SQLITE", dir_.path() + "/demo.db"}}));
    wait_for_handler(m2_.http_port(), "/", &demo_);
  }

  HttpResponse call(std::string_view method, std::string_view path, std::string_view body = "") {
    HttpConnection c(m2_.http_port());
    Headers headers;
    if (!body.empty()) headers.emplace_back("Content-Type", "application/json");
    return c.request(method, path, headers, body);
  }

  TempDir dir_{"brubeck-autoapi-it"};
  Mongrel2Server m2_;
  ChildProcess demo_;
};

TEST_F(TodoApi, AddTickDeleteAndSurviveARestart) {
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
  ASSERT_EQ(demo_.stop(SIGTERM), 0) << demo_.output();
  start_demo();
  r = call("GET", "/todo/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(Json::parse(r.body), Json::parse(R"([
      {"id":1,"text":"Watch more bsg","done":false,"order":1},
      {"id":2,"text":"Watch Blade Runner","done":true,"order":0}])"));
  EXPECT_EQ(r.header("X-Total-Count"), "2");
}

}  // namespace
}  // namespace brubeck::testing
