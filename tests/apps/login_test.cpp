// Users with argon2id hashes in a real SQLite file, login and logout through
// PageHandlers and ApiHandlers, pages and routes that need a user, and the
// throttle on failed logins (per client and account, never locking another
// client out).
#include <gtest/gtest.h>

#include <brubeck/brubeck.hpp>
#include <brubeck/testing.hpp>

#include <memory>
#include <string>

#include "support/fiber_runner.hpp"
#include "support/process.hpp"

namespace brubeck {
namespace {

using namespace std::chrono_literals;
using testing::run_fiber;
using testing::TestClient;
using testing::TestResponse;

class LoginPage : public PageHandler {
 public:
  void get() override { set_body(xsrf_form_html()); }
  void post() override {
    auto outcome = login(get_argument("name"), get_argument("password"));
    if (outcome)
      redirect_local(get_argument("next", "/"), 303);
    else if (outcome.kind == LoginOutcome::throttled)
      set_body("throttled");
    else
      set_body("wrong");
  }
};

class LogoutPage : public PageHandler {
 public:
  void post() override {
    logout();
    redirect("/login", 303);
  }
};

class PrivatePage : public PageHandler {
 public:
  bool login_required() const override { return true; }
  void get() override { set_body("hello " + current_user()->name); }
  void post() override { get(); }
};

class OpenPage : public PageHandler {
 public:
  void get() override { set_body(current_user() ? current_user()->name : "nobody"); }
};

class WhoApi : public ApiHandler {
 public:
  bool login_required() const override { return true; }
  void get() override { add_to_payload("user", current_user()->name); }
  void post() override { get(); }
};

class LoginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    users_ = std::make_shared<Users>(dir_.path() + "/users.db",
                                     Users::Credentials{{"ada", "take-five"}, {"o'brien", "pw"}});
    auto sessions = std::make_shared<Sessions>();
    sessions->store = std::make_shared<MemorySessionStore>();
    Config config;
    config.cookie_secrets = {"0123456789abcdef0123456789"};
    app_ = std::make_unique<App>(config);
    app_->route<LoginPage>("^/login$")
        .route<LogoutPage>("^/logout$")
        .route<PrivatePage>("^/private$")
        .route<WhoApi>("^/api/who$")
        .route<OpenPage>("^/open$")
        .route<LoginRequired<OpenPage>>("^/marked$");
    app_->provide(sessions);
    app_->provide(users_);
  }

  // A client from `address`, as a browser there would be.
  TestClient browser(std::string address = "10.0.0.1") {
    return TestClient(*app_, {.remote_addr = std::move(address)});
  }

  // A form POST carrying the page's CSRF token, as a browser submitting the
  // login form it was served would.
  static TestResponse submit(TestClient& b, const std::string& path, testing::Fields form) {
    if (b.xsrf_token().empty()) b.get("/login");  // the form's page sets the cookie
    form.emplace_back("_xsrf", b.xsrf_token());
    return b.post_form(path, form);
  }

  testing::TempDir dir_{"brubeck-users"};
  std::shared_ptr<Users> users_;
  std::unique_ptr<App> app_;
};

TEST_F(LoginTest, UsersKeepArgon2idHashesAndVerify) {
  run_fiber([this] {
    auto ada = users_->find("ada");
    ASSERT_TRUE(ada);
    EXPECT_EQ(ada->name, "ada");
    EXPECT_EQ(users_->verify("ada", "take-five"), ada);
    EXPECT_EQ(users_->verify("ada", "take-six"), std::nullopt);
    EXPECT_EQ(users_->verify("nobody", "take-five"), std::nullopt);
    EXPECT_EQ(users_->verify("", ""), std::nullopt);
    EXPECT_THROW(users_->create("ada", "other"), std::invalid_argument);
    EXPECT_THROW(users_->create("", "pw"), std::invalid_argument);
    EXPECT_THROW(users_->create("bob", ""), std::invalid_argument);
    auto hash = hash_password("secret");
    EXPECT_TRUE(hash.starts_with("$argon2id$")) << hash;
    EXPECT_TRUE(verify_password(hash, "secret"));
    EXPECT_FALSE(verify_password(hash, "Secret"));
    EXPECT_TRUE(users_->verify("o'brien", "pw"));
    auto bob = users_->create("bob", "bobs");
    EXPECT_NE(bob.id, ada->id);
    EXPECT_EQ(users_->verify("bob", "bobs"), bob);
    users_->set_password("ada", "take-six");
    EXPECT_EQ(users_->verify("ada", "take-six"), ada);
    EXPECT_EQ(users_->ensure("ada", "ignored"), ada);
  });
  // What survives: a new Users on the same file knows ada's new password
  // (an initial account that exists is left as it is).
  Users again(dir_.path() + "/users.db", {{"ada", "take-five"}});
  run_fiber([&again] { EXPECT_TRUE(again.verify("ada", "take-six")); });
}

// The hash runs on the offload pool: while it does, the fiber's own thread
// runs the reactor's other fibers.
TEST_F(LoginTest, HashingLeavesTheFibersThreadFree) {
  run_fiber([this] {
    bool other_ran = false;
    auto other = spawn([&other_ran] {
      this_fiber::sleep_for(1ms);
      other_ran = true;
    });
    EXPECT_TRUE(users_->verify("ada", "take-five"));
    // An argon2id hash takes far longer than 1 ms: had it held the thread,
    // the other fiber could not have run yet.
    EXPECT_TRUE(other_ran);
    other.join();
  });
}

TEST_F(LoginTest, APageNeedingAUserRedirectsToTheLoginWithNext) {
  auto b = browser();
  auto r = b.get("/private");
  EXPECT_EQ(r.status, 302);
  EXPECT_EQ(r.header("Location"), "/login?next=%2Fprivate");
  r = b.get("/private?tab=2&x=%2F");
  EXPECT_EQ(r.status, 302);
  EXPECT_EQ(r.header("Location"), "/login?next=%2Fprivate%3Ftab%3D2%26x%3D%252F");
  // A form sent without a user is refused, not redirected.
  EXPECT_EQ(submit(b, "/private", {{"a", "1"}}).status, 403);
  // A route marked with LoginRequired<> needs a user; the class alone not.
  EXPECT_EQ(b.get("/open").body, "nobody");
  EXPECT_EQ(b.get("/marked").status, 302);
}

TEST_F(LoginTest, AnApiNeedingAUserAnswers401) {
  auto b = browser();
  auto r = b.get("/api/who");
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(r.body.find("\"error\":\"login required\""), std::string::npos) << r.body;
}

TEST_F(LoginTest, LoginRegeneratesTheSessionAndLogoutEndsIt) {
  auto b = browser();
  EXPECT_EQ(submit(b, "/login", {{"name", "ada"}, {"password", "wrong"}}).body, "wrong");
  // The wrong attempt made no session; plant one, as a fixation attack would.
  EXPECT_FALSE(b.cookies().contains("session"));
  auto attacker = browser();
  attacker.cookies().set(
      "session", app_->handler_settings()->cookie_signer->sign("session", new_session_id()));
  const auto planted = attacker.cookies().value("session");
  b.cookies().set("session", planted);
  auto r = submit(b, "/login", {{"name", "ada"}, {"password", "take-five"}, {"next", "/private"}});
  EXPECT_EQ(r.status, 303);
  EXPECT_EQ(r.header("Location"), "/private");
  ASSERT_TRUE(b.cookies().contains("session"));
  EXPECT_NE(b.cookies().value("session"), planted);
  EXPECT_EQ(b.get("/private").body, "hello ada");
  EXPECT_EQ(b.get("/open").body, "ada");
  EXPECT_EQ(attacker.get("/open").body, "nobody");  // the planted id got nothing

  // The API sees the user on safe requests; an unsafe one needs the token
  // header besides the cookie.
  EXPECT_NE(b.get("/api/who").body.find("\"user\":\"ada\""), std::string::npos);
  const testing::Fields form{{"content-type", "application/x-www-form-urlencoded"}};
  EXPECT_EQ(b.post("/api/who", {}, form).status, 401);
  auto with_header = b.post("/api/who", {}, {form[0], {"x-xsrftoken", b.xsrf_token()}});
  EXPECT_EQ(with_header.status, 200);

  auto logged_in_cookie = b.cookies().value("session");
  EXPECT_EQ(submit(b, "/logout", {}).status, 303);
  EXPECT_FALSE(b.cookies().contains("session"));
  EXPECT_EQ(b.get("/private").status, 302);
  // The old cookie, replayed, is worth nothing: the session is gone.
  b.cookies().set("session", logged_in_cookie);
  EXPECT_EQ(b.get("/private").status, 302);
}

TEST_F(LoginTest, FailedLoginsThrottleTheGuesserOnlyOnThatAccount) {
  auto guesser = browser("10.0.0.66");
  auto owner = browser("10.0.0.7");
  guesser.run([this] { users_->create("bob", "bobs-password"); });
  const auto per_pair = users_->throttle().limits().per_pair;
  for (unsigned i = 0; i < per_pair; ++i)
    EXPECT_EQ(
        submit(guesser, "/login", {{"name", "ada"}, {"password", "guess" + std::to_string(i)}})
            .body,
        "wrong");
  // Now even the right password is refused to that client, on that account.
  auto r = submit(guesser, "/login", {{"name", "ada"}, {"password", "take-five"}});
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.body, "throttled");
  bool has_retry_after = false;
  for (const auto& [k, v] : r.headers)
    if (k == "Retry-After") has_retry_after = std::stoi(v) > 0;
  EXPECT_TRUE(has_retry_after);
  EXPECT_FALSE(guesser.cookies().contains("session"));
  // The account's owner, from another address, is not locked out.
  EXPECT_EQ(submit(owner, "/login", {{"name", "ada"}, {"password", "take-five"}}).status, 303);
  EXPECT_EQ(owner.get("/private").body, "hello ada");
  // And the guesser may still log into another account it knows.
  EXPECT_EQ(submit(guesser, "/login", {{"name", "bob"}, {"password", "bobs-password"}}).status,
            303);
}

TEST(LoginThrottle, LimitsAClientOverAllAccounts) {
  LoginThrottle t({.window = std::chrono::seconds(60), .per_pair = 3, .per_client = 5});
  auto now = LoginThrottle::Clock::now();
  for (int i = 0; i < 5; ++i)
    EXPECT_TRUE(t.attempt("1.1.1.1", "user" + std::to_string(i), now).allowed);
  auto v = t.attempt("1.1.1.1", "fresh", now);
  EXPECT_FALSE(v.allowed);
  EXPECT_EQ(v.retry_after, 60s);
  EXPECT_TRUE(t.attempt("2.2.2.2", "fresh", now).allowed);  // another client
  // The window passes: the client may try again.
  EXPECT_TRUE(t.attempt("1.1.1.1", "fresh", now + 61s).allowed);
}

TEST(LoginThrottle, SlowsButNeverLocksAnAccountUnderAttackFromManyClients) {
  LoginThrottle t({.per_account = 4, .account_delay = 500ms});
  auto now = LoginThrottle::Clock::now();
  for (int i = 0; i < 4; ++i) {
    auto v = t.attempt("10.0.0." + std::to_string(i), "ada", now);
    EXPECT_TRUE(v.allowed);
    EXPECT_EQ(v.delay, 0ms);
  }
  auto v = t.attempt("10.0.1.1", "ada", now);
  EXPECT_TRUE(v.allowed);
  EXPECT_EQ(v.delay, 500ms);
  EXPECT_EQ(t.attempt("10.0.1.1", "bob", now).delay, 0ms);
}

TEST(LoginThrottle, ASuccessClearsThePairAndIsNotCountedAgainstTheClient) {
  LoginThrottle t({.per_pair = 2, .per_client = 3});
  auto now = LoginThrottle::Clock::now();
  EXPECT_TRUE(t.attempt("c", "ada", now).allowed);  // failed
  EXPECT_TRUE(t.attempt("c", "ada", now).allowed);  // right
  t.succeeded("c", "ada");
  EXPECT_TRUE(t.attempt("c", "ada", now).allowed);
  t.succeeded("c", "ada");
  EXPECT_TRUE(t.attempt("c", "ada", now).allowed);
  t.succeeded("c", "ada");
  // One failure is left on the client's count: two more reach the limit.
  EXPECT_TRUE(t.attempt("c", "x", now).allowed);
  EXPECT_TRUE(t.attempt("c", "y", now).allowed);
  EXPECT_FALSE(t.attempt("c", "z", now).allowed);
}

}  // namespace
}  // namespace brubeck
