// App::provide hands one object per type to every handler, through the
// settings the dispatcher binds; a handler asking for a service the app did
// not provide gets a 500, not a crash.
#include <gtest/gtest.h>

#include <brubeck/brubeck.hpp>
#include <brubeck/testing.hpp>

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
  App app;
  app.route<GreetingHandler>("^/g$").route<OptionalHandler>("^/o$");
  app.provide(std::make_shared<Greeting>(Greeting{"first"}));
  app.provide(std::make_shared<Greeting>(Greeting{"take five"}));  // replaces
  testing::TestClient client(app);
  auto r = client.get("/g");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "take five");
  EXPECT_EQ(client.get("/o").body, "found");
}

TEST(Services, MissingServiceIsA500) {
  App app;
  app.route<GreetingHandler>("^/g$").route<OptionalHandler>("^/o$");
  testing::TestClient client(app);
  EXPECT_EQ(client.get("/g").status, 500);
  EXPECT_EQ(client.get("/o").body, "none");
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
