// Dispatch as a client sees it: routing, 404/405/OPTIONS/HEAD, the
// lifecycle, errors and deadlines, through the testing kit's client (which
// runs dispatch on a fiber, as a shard does).
#include "brubeck/handlers/dispatch.hpp"

#include <brubeck/testing.hpp>

#include <gtest/gtest.h>

#include <stdexcept>

#include "brubeck/handlers/http_error.hpp"
#include "brubeck/pipeline/errors.hpp"
#include "brubeck/pipeline/fiber_hub.hpp"
#include "handlers/test_support.hpp"

namespace brubeck {
namespace {

using testing::TestClient;

class TakeFive : public WebMessageHandler {
 public:
  void get() override { set_body("Take five, " + get_argument("name", "dude") + "!"); }
};

class Words : public WebMessageHandler {
 public:
  void get() override { set_body(std::string(get_url_arg(0)) + "|" + std::string(get_url_arg(1))); }
  void post() override { set_status(201); }
};

class Boom : public WebMessageHandler {
 public:
  void get() override { throw std::runtime_error("kaboom"); }
};

class Lifecycle : public WebMessageHandler {
 public:
  void initialize() override { trace_ += "i"; }
  void prepare() override { trace_ += "p"; }
  void get() override { trace_ += "g"; }
  void on_finish() override {
    trace_ += "f";
    set_body(trace_);
  }

 private:
  std::string trace_;
};

class Payload : public JSONMessageHandler {
 public:
  void get() override {
    add_to_payload("message", "Take five, " + get_argument("name", "dude") + "!");
    add_to_payload("n", 3);
  }
};

std::vector<RouteSpec> demo_routes() {
  std::vector<RouteSpec> specs;
  specs.push_back(class_route<TakeFive>(R"(^/brubeck$)"));
  specs.push_back(class_route<Words>(R"(^/w/(\w+)/(\w+)$)"));
  specs.push_back(class_route<Boom>(R"(^/boom$)"));
  specs.push_back(class_route<Lifecycle>(R"(^/life$)"));
  specs.push_back(class_route<Payload>(R"(^/json$)"));
  specs.push_back(
      function_route(R"(^/fun/(?P<name>[^/]+)$)", {Method::get}, [](WebMessageHandler& h) {
        h.set_body("Take five, " + std::string(h.get_url_arg("name")) + "!");
      }));
  specs.push_back(class_route<TakeFive>(R"(^/brubeck)"));  // shadowed for exact path
  return specs;
}

TEST(Dispatch, ClassHandlerWithArgument) {
  TestClient client(demo_routes());
  auto r = client.get("/brubeck?name=ada");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "Take five, ada!");
  r = client.get("/brubeck");
  EXPECT_EQ(r.body, "Take five, dude!");
}

TEST(Dispatch, UnknownPathIs404) {
  TestClient client(demo_routes());
  EXPECT_EQ(client.get("/nope").status, 404);
}

// The route that answered, for per-route metrics (405s included).
TEST(Dispatch, NamesTheMatchedRoute) {
  RouteTable routes(demo_routes());
  auto d = dispatch(routes, testing::make_request("GET", "/nope"));
  EXPECT_EQ(d.route, nullptr);
  d = dispatch(routes, testing::make_request("GET", "/brubeck"));
  ASSERT_NE(d.route, nullptr);
  EXPECT_EQ(d.route->pattern, "^/brubeck$");
  d = dispatch(routes, testing::make_request("POST", "/brubeck"));
  ASSERT_NE(d.route, nullptr);
  EXPECT_EQ(d.route->pattern, "^/brubeck$");
}

TEST(Dispatch, MissingMethodIs405WithAllow) {
  TestClient client(demo_routes());
  auto r = client.post("/brubeck");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.header("Allow"), "GET, HEAD, OPTIONS");
  EXPECT_EQ(r.body, "405 Method Not Allowed\n");
  r = client.delete_("/w/a/b");
  EXPECT_EQ(r.header("Allow"), "GET, HEAD, POST, OPTIONS");
  r = client.request("BREW", "/brubeck");
  EXPECT_EQ(r.status, 405);
}

TEST(Dispatch, OptionsAnsweredByDefault) {
  TestClient client(demo_routes());
  auto r = client.options("/w/a/b");
  EXPECT_EQ(r.status, 204);
  EXPECT_EQ(r.header("Allow"), "GET, HEAD, POST, OPTIONS");
}

TEST(Dispatch, HeadRunsGetWithoutBody) {
  TestClient client(demo_routes());
  auto r = client.head("/brubeck?name=x");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "");
  EXPECT_NE(r.raw.find("Content-Length: 13\r\n"), std::string::npos);
  EXPECT_EQ(r.raw.substr(r.raw.size() - 4), "\r\n\r\n");
}

TEST(Dispatch, PositionalAndNamedGroups) {
  TestClient client(demo_routes());
  EXPECT_EQ(client.get("/w/take/five").body, "take|five");
  EXPECT_EQ(client.post("/w/a/b").status, 201);
  auto r = client.get("/fun/ada");
  EXPECT_EQ(r.body, "Take five, ada!");
  r = client.post("/fun/ada");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.header("Allow"), "GET, HEAD, OPTIONS");
}

TEST(Dispatch, FirstMatchWinsAndMatchIsAnchoredAtStart) {
  TestClient client(demo_routes());
  // "/brubeckish" skips the exact route and hits the prefix one.
  EXPECT_EQ(client.get("/brubeckish").status, 200);
  EXPECT_EQ(client.get("/x/brubeck").status, 404);
}

TEST(Dispatch, ExceptionBecomes500) {
  TestClient client(demo_routes());
  auto r = client.get("/boom");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body, "500 Internal Server Error\n");
}

TEST(Dispatch, LifecycleOrder) {
  TestClient client(demo_routes());
  EXPECT_EQ(client.get("/life").body, "ipgf");
}

TEST(Dispatch, JsonHandlerPayload) {
  TestClient client(demo_routes());
  auto r = client.get("/json?name=a%22b");
  EXPECT_EQ(r.header("Content-Type"), "application/json");
  auto doc = r.json();
  EXPECT_EQ(doc["status_code"], 200);
  EXPECT_EQ(doc["status_msg"], "OK");
  EXPECT_EQ(doc["message"], "Take five, a\"b!");
  EXPECT_EQ(doc["n"], 3);
  EXPECT_GT(doc["timestamp"].get<std::int64_t>(), 1'600'000'000'000);
  EXPECT_EQ(r.body.rfind("{\"status_code\":200,\"status_msg\":\"OK\",\"message\":", 0), 0u);
}

TEST(Routes, BadPatternIsRejectedWithItsName) {
  std::vector<RouteSpec> specs;
  specs.push_back(class_route<TakeFive>("^/(unclosed"));
  try {
    RouteTable t(std::move(specs));
    FAIL() << "expected invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("(unclosed"), std::string::npos);
  }
}

TEST(Routes, MethodsOfDetectsOverrides) {
  EXPECT_EQ(methods_of<TakeFive>().allow_header(), "GET, HEAD, OPTIONS");
  EXPECT_EQ(methods_of<Words>().allow_header(), "GET, HEAD, POST, OPTIONS");
  EXPECT_EQ(methods_of<WebMessageHandler>().allow_header(), "OPTIONS");
}

}  // namespace
}  // namespace brubeck

namespace brubeck {
namespace {

// Deadlines and failing dependencies, with dispatch running in a fiber as on
// a shard: a slow handler is cut off at the route's deadline (504), an
// unreachable dependency is a 503, and the app default applies elsewhere.
TEST(Dispatch, DeadlinesAndUnavailableDependencies) {
  std::vector<RouteSpec> specs;
  specs.push_back(function_route(R"(^/slow$)", {Method::get}, [](WebMessageHandler& h) {
                    this_fiber::sleep_for(std::chrono::hours(1));
                    h.set_body("too late");
                  }).with_timeout(std::chrono::milliseconds(20)));
  specs.push_back(function_route(R"(^/slow-default$)", {Method::get}, [](WebMessageHandler& h) {
    this_fiber::sleep_for(std::chrono::hours(1));
    h.set_body("too late");
  }));
  specs.push_back(function_route(R"(^/down$)", {Method::get},
                                 [](WebMessageHandler&) { throw Unavailable("redis is down"); }));
  auto settings = std::make_shared<HandlerSettings>();
  settings->request_timeout = std::chrono::milliseconds(30);
  TestClient client(std::move(specs), settings);

  auto start = Clock::now();
  EXPECT_EQ(client.get("/slow").status, 504);
  EXPECT_EQ(client.get("/slow-default").status, 504);
  EXPECT_EQ(client.get("/down").status, 503);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
}

// check_request() runs after initialize() and before prepare(); false skips
// prepare() and the method (the reply is already made), an HttpError is its
// status. on_finish() runs either way.
class Checked : public WebMessageHandler {
 public:
  void initialize() override { trace_ += "i"; }
  bool check_request() override {
    trace_ += "c";
    auto mode = get_argument("check");
    if (mode == "refuse") throw HttpError(403, "refused");
    if (mode == "redirect") {
      redirect("/elsewhere");
      return false;
    }
    return true;
  }
  void prepare() override { trace_ += "p"; }
  void get() override { trace_ += "g"; }
  void on_finish() override {
    trace_ += "f";
    if (status_code() < 400) set_body(trace_);
  }

 private:
  std::string trace_;
};

TEST(Dispatch, CheckRequestRunsBeforePrepareAndCanEndTheRequest) {
  TestClient client({class_route<Checked>("^/c$")});
  EXPECT_EQ(client.get("/c").body, "icpgf");
  auto redirected = client.get("/c?check=redirect");
  EXPECT_EQ(redirected.status, 302);
  EXPECT_EQ(redirected.body, "icf");
  EXPECT_EQ(client.get("/c?check=refuse").status, 403);
}

}  // namespace
}  // namespace brubeck
