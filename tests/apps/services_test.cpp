// App::provide hands one object per type to every handler, through the
// settings the dispatcher binds; a handler asking for a service the app did
// not provide gets a 500, not a crash.
#include <gtest/gtest.h>

#include <brubeck/brubeck.hpp>
#include <brubeck/handlers/dispatch.hpp>

#include "handlers/test_support.hpp"

namespace brubeck {
namespace {

struct Greeting {
  std::string text;
};

class GreetingHandler : public PageHandler {
 public:
  void get() override { set_body(service<Greeting>().text); }
};

class OptionalHandler : public WebMessageHandler {
 public:
  void get() override { set_body(find_service<Greeting>() ? "found" : "none"); }
};

TEST(Services, ProvidedServiceReachesTheHandler) {
  Services services;
  services.provide(std::make_shared<Greeting>(Greeting{"first"}));
  services.provide(std::make_shared<Greeting>(Greeting{"take five"}));  // replaces
  HandlerSettings settings;
  settings.services = std::make_shared<const Services>(std::move(services));
  RouteTable routes({class_route<GreetingHandler>("^/g$"), class_route<OptionalHandler>("^/o$")});
  auto r = dispatch(routes, testing::make_request("GET", "/g"), settings);
  EXPECT_EQ(r.response.status, 200);
  EXPECT_EQ(r.response.body, "take five");
  EXPECT_EQ(dispatch(routes, testing::make_request("GET", "/o"), settings).response.body, "found");
}

TEST(Services, MissingServiceIsA500) {
  RouteTable routes({class_route<GreetingHandler>("^/g$"), class_route<OptionalHandler>("^/o$")});
  HandlerSettings settings;
  EXPECT_EQ(dispatch(routes, testing::make_request("GET", "/g"), settings).response.status, 500);
  EXPECT_EQ(dispatch(routes, testing::make_request("GET", "/o"), settings).response.body, "none");
}

TEST(Services, AppKeepsWhatItWasGiven) {
  App app;
  auto greeting = std::make_shared<Greeting>(Greeting{"hi"});
  app.provide(greeting);
  EXPECT_EQ(app.services().find<Greeting>(), greeting.get());
  EXPECT_EQ(app.services().find<int>(), nullptr);
}

}  // namespace
}  // namespace brubeck
