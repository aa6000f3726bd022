#include "brubeck/handlers/dispatch.hpp"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <stdexcept>

#include "brubeck/handlers/http_error.hpp"
#include "brubeck/pipeline/errors.hpp"
#include "brubeck/pipeline/fiber_hub.hpp"
#include "handlers/test_support.hpp"

namespace brubeck {
namespace {

using testing::make_request;

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

RouteTable demo_routes() {
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
  return RouteTable(std::move(specs));
}

std::string header(const Response& r, std::string_view name) {
  for (const auto& [k, v] : r.headers)
    if (iequals(k, name)) return v;
  return {};
}

TEST(Dispatch, ClassHandlerWithArgument) {
  auto routes = demo_routes();
  auto d = dispatch(routes, make_request("GET", "/brubeck", "name=ada"));
  EXPECT_EQ(d.response.status, 200);
  EXPECT_EQ(d.response.body, "Take five, ada!");
  d = dispatch(routes, make_request("GET", "/brubeck"));
  EXPECT_EQ(d.response.body, "Take five, dude!");
}

TEST(Dispatch, UnknownPathIs404) {
  auto routes = demo_routes();
  auto d = dispatch(routes, make_request("GET", "/nope"));
  EXPECT_EQ(d.response.status, 404);
  EXPECT_EQ(d.route, nullptr);
}

// The route that answered, for per-route metrics (405s included).
TEST(Dispatch, NamesTheMatchedRoute) {
  auto routes = demo_routes();
  auto d = dispatch(routes, make_request("GET", "/brubeck"));
  ASSERT_NE(d.route, nullptr);
  EXPECT_EQ(d.route->pattern, "^/brubeck$");
  d = dispatch(routes, make_request("POST", "/brubeck"));
  ASSERT_NE(d.route, nullptr);
  EXPECT_EQ(d.route->pattern, "^/brubeck$");
}

TEST(Dispatch, MissingMethodIs405WithAllow) {
  auto routes = demo_routes();
  auto d = dispatch(routes, make_request("POST", "/brubeck"));
  EXPECT_EQ(d.response.status, 405);
  EXPECT_EQ(header(d.response, "Allow"), "GET, HEAD, OPTIONS");
  EXPECT_EQ(d.response.body, "405 Method Not Allowed\n");
  d = dispatch(routes, make_request("DELETE", "/w/a/b"));
  EXPECT_EQ(header(d.response, "Allow"), "GET, HEAD, POST, OPTIONS");
  d = dispatch(routes, make_request("BREW", "/brubeck"));
  EXPECT_EQ(d.response.status, 405);
}

TEST(Dispatch, OptionsAnsweredByDefault) {
  auto routes = demo_routes();
  auto d = dispatch(routes, make_request("OPTIONS", "/w/a/b"));
  EXPECT_EQ(d.response.status, 204);
  EXPECT_EQ(header(d.response, "Allow"), "GET, HEAD, POST, OPTIONS");
}

TEST(Dispatch, HeadRunsGetWithoutBody) {
  auto routes = demo_routes();
  auto d = dispatch(routes, make_request("HEAD", "/brubeck", "name=x"));
  EXPECT_EQ(d.response.status, 200);
  EXPECT_FALSE(d.include_body);
  std::string out;
  d.response.serialize(out, d.include_body);
  EXPECT_NE(out.find("Content-Length: 13\r\n"), std::string::npos);
  EXPECT_EQ(out.substr(out.size() - 4), "\r\n\r\n");
}

TEST(Dispatch, PositionalAndNamedGroups) {
  auto routes = demo_routes();
  EXPECT_EQ(dispatch(routes, make_request("GET", "/w/take/five")).response.body, "take|five");
  EXPECT_EQ(dispatch(routes, make_request("POST", "/w/a/b")).response.status, 201);
  auto d = dispatch(routes, make_request("GET", "/fun/ada"));
  EXPECT_EQ(d.response.body, "Take five, ada!");
  d = dispatch(routes, make_request("POST", "/fun/ada"));
  EXPECT_EQ(d.response.status, 405);
  EXPECT_EQ(header(d.response, "Allow"), "GET, HEAD, OPTIONS");
}

TEST(Dispatch, FirstMatchWinsAndMatchIsAnchoredAtStart) {
  auto routes = demo_routes();
  // "/brubeckish" skips the exact route and hits the prefix one.
  EXPECT_EQ(dispatch(routes, make_request("GET", "/brubeckish")).response.status, 200);
  EXPECT_EQ(dispatch(routes, make_request("GET", "/x/brubeck")).response.status, 404);
}

TEST(Dispatch, ExceptionBecomes500) {
  auto routes = demo_routes();
  auto d = dispatch(routes, make_request("GET", "/boom"));
  EXPECT_EQ(d.response.status, 500);
  EXPECT_EQ(d.response.body, "500 Internal Server Error\n");
}

TEST(Dispatch, LifecycleOrder) {
  auto routes = demo_routes();
  EXPECT_EQ(dispatch(routes, make_request("GET", "/life")).response.body, "ipgf");
}

TEST(Dispatch, JsonHandlerPayload) {
  auto routes = demo_routes();
  auto d = dispatch(routes, make_request("GET", "/json", "name=a%22b"));
  EXPECT_EQ(header(d.response, "Content-Type"), "application/json");
  simdjson::dom::parser parser;
  auto doc = parser.parse(d.response.body);
  ASSERT_FALSE(doc.error()) << d.response.body;
  EXPECT_EQ(int64_t(doc["status_code"]), 200);
  EXPECT_EQ(std::string_view(doc["status_msg"]), "OK");
  EXPECT_EQ(std::string_view(doc["message"]), "Take five, a\"b!");
  EXPECT_EQ(int64_t(doc["n"]), 3);
  EXPECT_GT(int64_t(doc["timestamp"]), 1'600'000'000'000);
  EXPECT_EQ(d.response.body.rfind("{\"status_code\":200,\"status_msg\":\"OK\",\"message\":", 0),
            0u);
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
  RouteTable routes(std::move(specs));
  HandlerSettings settings;
  settings.request_timeout = std::chrono::milliseconds(30);

  FiberHub hub;
  std::vector<int> statuses;
  auto start = Clock::now();
  for (auto path : {"/slow", "/slow-default", "/down"})
    hub.spawn([&, path] {
      statuses.push_back(dispatch(routes, make_request("GET", path), settings).response.status);
    });
  auto limit = Clock::now() + std::chrono::seconds(10);
  while (hub.live() > 0 && Clock::now() < limit) {
    hub.fire_timers();
    hub.run_ready();
  }
  EXPECT_EQ(statuses, (std::vector<int>{503, 504, 504}));
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
  RouteTable routes({class_route<Checked>("^/c$")});
  EXPECT_EQ(dispatch(routes, make_request("GET", "/c")).response.body, "icpgf");
  auto redirected = dispatch(routes, make_request("GET", "/c", "check=redirect")).response;
  EXPECT_EQ(redirected.status, 302);
  EXPECT_EQ(redirected.body, "icf");
  EXPECT_EQ(dispatch(routes, make_request("GET", "/c", "check=refuse")).response.status, 403);
}

}  // namespace
}  // namespace brubeck
