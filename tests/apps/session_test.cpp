// Sessions: one typed suite run against every store (memory, a real SQLite
// file, a real redis-server), first on the store itself, then through
// PageHandlers, through the testing kit's client (dispatch on fibers of a
// real reactor, as on a shard).
#include <gtest/gtest.h>

#include <brubeck/brubeck.hpp>
#include <brubeck/testing.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/fiber_runner.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"
#include "support/shared_server.hpp"

namespace brubeck {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::run_fiber;
using testing::TestClient;
using testing::TestResponse;

// ---- the stores under test ----

struct MemoryKind {
  static constexpr const char* name = "memory";
  static void set_up_suite() {}
  static void tear_down_suite() {}
  static std::string error() { return {}; }
  std::shared_ptr<SessionStore> the_store = std::make_shared<MemorySessionStore>();
  // One process: "another" store is the same one.
  std::shared_ptr<SessionStore> open() { return the_store; }
};

struct SqliteKind {
  static void set_up_suite() {}
  static void tear_down_suite() {}
  static std::string error() { return {}; }
  testing::TempDir dir{"brubeck-sessions"};
  // A new store on the same file each time: what a restarted process sees.
  std::shared_ptr<SessionStore> open() {
    return std::make_shared<SqliteSessionStore>(dir.path() + "/sessions.db");
  }
};

struct RedisKind {
  static inline std::unique_ptr<testing::RedisServer> server;
  static inline std::string start_error;
  static inline int tests = 0;
  static void set_up_suite() { server = testing::start_shared<testing::RedisServer>(start_error); }
  static void tear_down_suite() { server.reset(); }
  static std::string error() { return server ? std::string() : start_error; }
  // Each test its own key prefix on the shared server.
  std::string prefix = "test" + std::to_string(++tests) + ":session:";
  // Another store object, as another process or host would hold.
  std::shared_ptr<SessionStore> open() {
    return std::make_shared<RedisSessionStore>("127.0.0.1",
                                               static_cast<std::uint16_t>(server->port()), prefix);
  }
};

template <class Kind>
class SessionStoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { Kind::set_up_suite(); }
  static void TearDownTestSuite() { Kind::tear_down_suite(); }
  void SetUp() override {
    ASSERT_EQ(Kind::error(), "");
    kind_ = std::make_unique<Kind>();
    store_ = kind_->open();
  }

  // A handler setting: the store, a cookie signer, and the Sessions service.
  std::shared_ptr<HandlerSettings> settings(std::chrono::seconds ttl = std::chrono::hours(1)) {
    auto sessions = std::make_shared<Sessions>();
    sessions->store = store_;
    sessions->ttl = ttl;
    Services services;
    services.provide(sessions);
    auto s = std::make_shared<HandlerSettings>();
    s->cookie_signer =
        std::make_shared<CookieSigner>(std::vector<std::string>{"0123456789abcdef0123456789"});
    s->services = std::make_shared<const Services>(std::move(services));
    return s;
  }

  std::unique_ptr<Kind> kind_;
  std::shared_ptr<SessionStore> store_;
};

using StoreKinds = ::testing::Types<MemoryKind, SqliteKind, RedisKind>;
struct KindNames {
  template <class T>
  static std::string GetName(int) {
    if constexpr (std::is_same_v<T, MemoryKind>) return "Memory";
    if constexpr (std::is_same_v<T, SqliteKind>) return "Sqlite";
    return "Redis";
  }
};
TYPED_TEST_SUITE(SessionStoreTest, StoreKinds, KindNames);

// ---- the store itself ----

TYPED_TEST(SessionStoreTest, SavesLoadsReplacesAndDestroys) {
  auto store = this->store_;
  run_fiber([store] {
    EXPECT_EQ(store->load("k1"), std::nullopt);
    json data = {{"user", {{"id", 7}, {"name", "ada"}}}, {"cart", {1, 2, 3}}, {"note", "é ✓"}};
    store->save("k1", data, 1h);
    EXPECT_EQ(store->load("k1"), data);
    store->save("k1", json{{"n", 2}}, 1h);
    EXPECT_EQ(store->load("k1"), (json{{"n", 2}}));
    EXPECT_EQ(store->load("k2"), std::nullopt);
    store->destroy("k1");
    EXPECT_EQ(store->load("k1"), std::nullopt);
    store->destroy("never-saved");  // not an error
  });
}

TYPED_TEST(SessionStoreTest, ExpiresAfterItsTtl) {
  auto store = this->store_;
  run_fiber([store] {
    store->save("short", json{{"a", 1}}, 300ms);
    store->save("long", json{{"b", 2}}, 1h);
    EXPECT_EQ(store->load("short"), (json{{"a", 1}}));
    this_fiber::sleep_for(700ms);
    EXPECT_EQ(store->load("short"), std::nullopt);
    EXPECT_EQ(store->load("long"), (json{{"b", 2}}));
    // A save starts the lifetime again.
    store->save("long", json{{"b", 3}}, 300ms);
    store->save("long", json{{"b", 4}}, 1h);
    this_fiber::sleep_for(500ms);
    EXPECT_EQ(store->load("long"), (json{{"b", 4}}));
  });
}

TYPED_TEST(SessionStoreTest, AnotherStoreOnTheSameBackingSeesTheSession) {
  auto store = this->store_;
  run_fiber([store] { store->save("shared", json{{"x", "y"}}, 1h); });
  auto again = this->kind_->open();
  run_fiber([again] {
    EXPECT_EQ(again->load("shared"), (json{{"x", "y"}}));
    again->destroy("shared");
  });
  run_fiber([store] { EXPECT_EQ(store->load("shared"), std::nullopt); });
}

TYPED_TEST(SessionStoreTest, ManyFibersAtOnceKeepTheirOwnSessions) {
  auto store = this->store_;
  run_fiber([store] {
    std::vector<Joinable<bool>> children;
    for (int i = 0; i < 50; ++i)
      children.push_back(spawn([store, i] {
        const auto key = "many" + std::to_string(i);
        store->save(key, json{{"i", i}}, 1h);
        return store->load(key) == json{{"i", i}};
      }));
    int ok = 0;
    for (auto& child : children) ok += child.join() ? 1 : 0;
    EXPECT_EQ(ok, 50);
  });
}

// ---- through handlers ----

class CountPage : public PageHandler {
 public:
  void get() override {
    int n = session().get("n", 0).template get<int>() + 1;
    session()["n"] = n;
    set_body(std::to_string(n));
  }
};

class ReadPage : public PageHandler {
 public:
  void get() override {
    set_body(session().get("n", 0).dump() + (session().is_new() ? " new" : " stored"));
  }
};

class RegeneratePage : public PageHandler {
 public:
  void get() override { session().regenerate(); }
};

class DestroyPage : public PageHandler {
 public:
  void get() override { session().destroy(); }
};

std::vector<RouteSpec> session_routes() {
  return {class_route<CountPage>("^/count$"), class_route<ReadPage>("^/read$"),
          class_route<RegeneratePage>("^/regenerate$"), class_route<DestroyPage>("^/destroy$")};
}

// The value of the Set-Cookie line for `name` ("" when none was sent), and
// the whole line.
std::string set_cookie_line(const TestResponse& r, std::string_view name) {
  for (const auto& [k, v] : r.headers)
    if (k == "Set-Cookie" && v.starts_with(std::string(name) + "=")) return v;
  return {};
}
std::string set_cookie_value(const TestResponse& r, std::string_view name) {
  auto line = set_cookie_line(r, name);
  if (line.empty()) return {};
  auto start = name.size() + 1;
  return line.substr(start, line.find(';') - start);
}

// A GET carrying `cookie` as the session cookie, or no cookie at all.
TestResponse get(TestClient& client, const std::string& path, const std::string& cookie = {}) {
  client.cookies().clear();
  if (!cookie.empty()) client.cookies().set("session", cookie);
  return client.get(path);
}

TYPED_TEST(SessionStoreTest, TheCookieCarriesTheSessionAcrossRequests) {
  auto settings = this->settings(2h);
  TestClient client(session_routes(), settings);
  auto first = get(client, "/count");
  EXPECT_EQ(first.body, "1");
  auto line = set_cookie_line(first, "session");
  EXPECT_NE(line.find("HttpOnly"), std::string::npos) << line;
  EXPECT_NE(line.find("SameSite=Lax"), std::string::npos) << line;
  EXPECT_NE(line.find("Max-Age=7200"), std::string::npos) << line;
  auto cookie = set_cookie_value(first, "session");
  ASSERT_FALSE(cookie.empty());
  EXPECT_EQ(get(client, "/count", cookie).body, "2");
  EXPECT_EQ(get(client, "/read", cookie).body, "2 stored");
  // The store holds the session under a hash of its id, never the id.
  std::string id = *settings->cookie_signer->verify("session", cookie, 1h);
  run_fiber([&] {
    EXPECT_EQ(this->store_->load(id), std::nullopt);
    EXPECT_EQ(this->store_->load(session_store_key(id)), (json{{"n", 2}}));
  });
}

TYPED_TEST(SessionStoreTest, AnUnchangedSessionIsNotSavedAndSetsNoCookie) {
  auto settings = this->settings();
  TestClient client(session_routes(), settings);
  auto fresh = get(client, "/read");
  EXPECT_EQ(fresh.body, "0 new");
  EXPECT_EQ(set_cookie_line(fresh, "session"), "");
  auto cookie = set_cookie_value(get(client, "/count"), "session");
  auto read = get(client, "/read", cookie);
  EXPECT_EQ(read.body, "1 stored");
  EXPECT_EQ(set_cookie_line(read, "session"), "");
}

TYPED_TEST(SessionStoreTest, TamperedUnknownOrExpiredCookiesAreAFreshSession) {
  auto settings = this->settings();
  TestClient client(session_routes(), settings);
  auto cookie = set_cookie_value(get(client, "/count"), "session");
  ASSERT_EQ(get(client, "/read", cookie).body, "1 stored");
  // One character of the signature changed.
  auto tampered = cookie;
  tampered.back() = tampered.back() == '0' ? '1' : '0';
  EXPECT_EQ(get(client, "/read", tampered).body, "0 new");
  // Signed properly, but no session of that id exists.
  auto unknown = settings->cookie_signer->sign("session", new_session_id());
  EXPECT_EQ(get(client, "/read", unknown).body, "0 new");
  // Signed, but older than the session's lifetime.
  auto old_id = *settings->cookie_signer->verify("session", cookie, 1h);
  auto expired =
      settings->cookie_signer->sign("session", old_id, std::chrono::system_clock::now() - 2h);
  EXPECT_EQ(get(client, "/read", expired).body, "0 new");
  // A fresh session from a bad cookie starts over under a new id.
  auto again = get(client, "/count", tampered);
  EXPECT_EQ(again.body, "1");
  auto new_id = *settings->cookie_signer->verify("session", set_cookie_value(again, "session"), 1h);
  EXPECT_NE(new_id, old_id);
}

TYPED_TEST(SessionStoreTest, RegenerateMovesTheDataToANewIdAndDestroysTheOld) {
  auto settings = this->settings();
  TestClient client(session_routes(), settings);
  auto old_cookie = set_cookie_value(get(client, "/count"), "session");
  auto regenerated = get(client, "/regenerate", old_cookie);
  auto new_cookie = set_cookie_value(regenerated, "session");
  ASSERT_FALSE(new_cookie.empty());
  EXPECT_NE(*settings->cookie_signer->verify("session", new_cookie, 1h),
            *settings->cookie_signer->verify("session", old_cookie, 1h));
  EXPECT_EQ(get(client, "/read", new_cookie).body, "1 stored");
  EXPECT_EQ(get(client, "/read", old_cookie).body, "0 new");
}

TYPED_TEST(SessionStoreTest, DestroyForgetsTheSessionAndItsCookie) {
  auto settings = this->settings();
  TestClient client(session_routes(), settings);
  auto cookie = set_cookie_value(get(client, "/count"), "session");
  auto destroyed = get(client, "/destroy", cookie);
  auto line = set_cookie_line(destroyed, "session");
  EXPECT_NE(line.find("Max-Age=0"), std::string::npos) << line;
  EXPECT_EQ(get(client, "/read", cookie).body, "0 new");
}

// ---- memory store: one object, every shard's thread at once ----

TEST(MemorySessionStore, ThreadsAtOnceSeeNoRace) {
  MemorySessionStore store;
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&store, &wrong, t] {
      for (int i = 0; i < 2000; ++i) {
        // (Built with append: GCC 12 warns falsely on "t" + std::string.)
        std::string key = "t";
        key.append(std::to_string(t)).append("k").append(std::to_string(i % 50));
        store.save(key, json{{"i", i}}, 1h);
        if (store.load(key) != json{{"i", i}}) ++wrong;
        if (i % 7 == 0) store.destroy(key);
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_LE(store.size(), 200u);
}

TEST(MemorySessionStore, ExpiredSessionsAreSweptAsOthersAreSaved) {
  MemorySessionStore store;
  for (int i = 0; i < 100; ++i) store.save("old" + std::to_string(i), json::object(), 1ms);
  std::this_thread::sleep_for(10ms);
  // 1,000 keys reach every stripe; each stripe sees over 256 saves.
  for (int i = 0; i < 16 * 1024; ++i)
    store.save("new" + std::to_string(i % 1000), json::object(), 1h);
  EXPECT_EQ(store.size(), 1000u);
}

// use_sessions builds the store the settings name and provides it.
TEST(UseSessions, BuildsTheConfiguredStore) {
  testing::TempDir dir{"brubeck-use-sessions"};
  auto config_for = [&](std::string store) {
    Config c;
    c.cookie_secrets = {"0123456789abcdef0123456789"};
    c.session_store = std::move(store);
    c.session_sqlite = dir.path() + "/s.db";
    c.session_redis = "127.0.0.1:6399";
    c.session_ttl_s = 600;
    c.login_url = "/sign-in";
    return c;
  };
  {
    App app{config_for("memory")};
    auto sessions = use_sessions(app);
    EXPECT_EQ(app.services().find<Sessions>(), sessions.get());
    EXPECT_NE(dynamic_cast<MemorySessionStore*>(sessions->store.get()), nullptr);
    EXPECT_EQ(sessions->ttl, 600s);
    EXPECT_EQ(sessions->login_url, "/sign-in");
  }
  {
    App app{config_for("sqlite")};
    EXPECT_NE(dynamic_cast<SqliteSessionStore*>(use_sessions(app)->store.get()), nullptr);
  }
  {
    App app{config_for("redis")};
    EXPECT_NE(dynamic_cast<RedisSessionStore*>(use_sessions(app)->store.get()), nullptr);
  }
  // Sessions ride in signed cookies: no secret, no sessions.
  auto no_secret = config_for("memory");
  no_secret.cookie_secrets.clear();
  App app{no_secret};
  EXPECT_THROW(use_sessions(app), std::logic_error);
}

TEST(SessionIds, AreRandomAndLongEnough) {
  auto a = new_session_id(), b = new_session_id();
  EXPECT_EQ(a.size(), 43u);  // 256 bits, base64url
  EXPECT_NE(a, b);
  EXPECT_TRUE(is_cookie_value(a));
  EXPECT_EQ(session_store_key(a).size(), 64u);
  EXPECT_EQ(session_store_key(a), session_store_key(a));
  EXPECT_NE(session_store_key(a), session_store_key(b));
}

}  // namespace
}  // namespace brubeck
