// CSRF tokens, Tornado style: PageHandler refuses unsafe methods without a
// token matching the `_xsrf` cookie (form field, X-XSRFToken or
// X-CSRFToken), ApiHandler does not check.
#include <gtest/gtest.h>

#include <brubeck/brubeck.hpp>
#include <brubeck/testing.hpp>

#include <string>

namespace brubeck {
namespace {

using testing::TestClient;
using testing::TestResponse;

class FormPage : public PageHandler {
 public:
  void get() override { set_body(xsrf_token() + "\n" + xsrf_token() + "\n" + xsrf_form_html()); }
  void post() override { set_body("posted"); }
  void put() override { set_body("put"); }
  void patch() override { set_body("patched"); }
  void delete_() override { set_body("deleted"); }
};

class NoCheckPage : public PageHandler {
 public:
  bool check_xsrf() const override { return false; }
  void post() override { set_body("posted"); }
};

class Api : public ApiHandler {
 public:
  void post() override { add_to_payload("ok", true); }
};

class CsrfTest : public ::testing::Test {
 protected:
  CsrfTest() {
    app_.route<FormPage>("^/form$").route<Api>("^/api$").route<NoCheckPage>("^/nocheck$");
  }
  // A request as a browser's form would send it: urlencoded, with `header`
  // besides (a token header) when given.
  static TestResponse send(TestClient& client, const std::string& method,
                           const std::string& body = {},
                           std::pair<std::string, std::string> header = {}) {
    testing::Fields headers{{"content-type", "application/x-www-form-urlencoded"}};
    if (!header.first.empty()) headers.push_back(std::move(header));
    return client.request(method, "/form", body, headers);
  }
  App app_;
};

TEST_F(CsrfTest, APageGetsAMaskedTokenAndItsCookieOnce) {
  TestClient b(app_);
  auto r = b.get("/form");
  int cookies = 0;
  for (const auto& [k, v] : r.headers)
    if (k == "Set-Cookie" && v.starts_with("_xsrf=")) {
      ++cookies;
      EXPECT_NE(v.find("SameSite=Lax"), std::string::npos) << v;
      EXPECT_EQ(v.find("HttpOnly"), std::string::npos) << v;  // scripts read it
    }
  EXPECT_EQ(cookies, 1);
  auto first = r.body.substr(0, r.body.find('\n'));
  auto rest = r.body.substr(first.size() + 1);
  auto second = rest.substr(0, rest.find('\n'));
  auto html = rest.substr(second.size() + 1);
  // Masked afresh each time, both standing for the cookie's secret.
  EXPECT_NE(first, second);
  EXPECT_TRUE(first.starts_with("2|"));
  EXPECT_TRUE(xsrf_matches(b.xsrf_token(), first));
  EXPECT_TRUE(xsrf_matches(b.xsrf_token(), second));
  EXPECT_TRUE(html.starts_with(R"(<input type="hidden" name="_xsrf" value="2|)")) << html;
  // With the cookie already there, no new one.
  auto again = b.get("/form");
  for (const auto& [k, v] : again.headers) EXPECT_FALSE(k == "Set-Cookie") << v;
  // The token in the form is accepted.
  EXPECT_EQ(send(b, "POST", "_xsrf=" + url_encode(first)).body, "posted");
}

TEST_F(CsrfTest, UnsafeMethodsWithoutTheRightTokenAre403) {
  TestClient b(app_);
  b.get("/form");
  const auto cookie = b.xsrf_token();
  ASSERT_FALSE(cookie.empty());
  for (const char* method : {"POST", "PUT", "PATCH", "DELETE"}) {
    SCOPED_TRACE(method);
    EXPECT_EQ(send(b, method).status, 403);            // no token
    EXPECT_EQ(send(b, method, "_xsrf=").status, 403);  // empty
    EXPECT_EQ(send(b, method, "_xsrf=" + new_xsrf_secret()).status, 403);
    EXPECT_EQ(send(b, method, {}, {"x-xsrftoken", "2|zz|zz"}).status, 403);
    EXPECT_EQ(send(b, method, {}, {"x-xsrftoken", cookie}).status, 200);
    EXPECT_EQ(send(b, method, {}, {"x-csrftoken", cookie}).status, 200);
  }
  EXPECT_EQ(send(b, "POST", "_xsrf=" + cookie).body, "posted");
  // The right token without its cookie: another site cannot set the cookie.
  TestClient stranger(app_);
  EXPECT_EQ(send(stranger, "POST", "_xsrf=" + cookie).status, 403);
  // A cookie that is not a token never matches, not even itself.
  stranger.cookies().set("_xsrf", "not-a-token");
  EXPECT_EQ(send(stranger, "POST", {}, {"x-xsrftoken", "not-a-token"}).status, 403);
}

TEST_F(CsrfTest, ApisAndPagesThatOptOutAreNotChecked) {
  TestClient b(app_);
  const testing::Fields form{{"content-type", "application/x-www-form-urlencoded"}};
  auto r = b.post("/api", {}, form);
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("\"ok\":true"), std::string::npos);
  EXPECT_EQ(b.post("/nocheck", {}, form).body, "posted");
}

TEST(Xsrf, TokensAndMethods) {
  auto secret = new_xsrf_secret();
  EXPECT_EQ(secret.size(), 64u);
  EXPECT_NE(secret, new_xsrf_secret());
  EXPECT_TRUE(xsrf_matches(secret, secret));
  EXPECT_TRUE(xsrf_matches(secret, mask_xsrf_token(secret)));
  EXPECT_FALSE(xsrf_matches(secret, mask_xsrf_token(new_xsrf_secret())));
  EXPECT_FALSE(xsrf_matches(secret, secret.substr(1)));
  EXPECT_FALSE(xsrf_matches(secret, ""));
  auto masked = mask_xsrf_token(secret);
  masked.back() = masked.back() == 'a' ? 'b' : 'a';
  EXPECT_FALSE(xsrf_matches(secret, masked));
  for (const char* m : {"POST", "PUT", "PATCH", "DELETE", "PROPFIND"})
    EXPECT_TRUE(is_unsafe_method(m)) << m;
  for (const char* m : {"GET", "HEAD", "OPTIONS"}) EXPECT_FALSE(is_unsafe_method(m)) << m;
}

}  // namespace
}  // namespace brubeck
