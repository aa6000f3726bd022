// The WebMessageHandler API on its own: arguments from every source, JSON
// bodies, cookies and signed cookies, redirects, error pages.
#include <brubeck/testing.hpp>

#include <gtest/gtest.h>
#include <simdjson.h>

#include "brubeck/handlers/dispatch.hpp"
#include "brubeck/handlers/http_error.hpp"
#include "handlers/test_support.hpp"

namespace brubeck {
namespace {

using testing::make_request;
using testing::TestClient;

class Echo : public WebMessageHandler {
 public:
  void get() override {
    std::string out;
    for (const auto& [k, v] : arguments()) out += k + "=" + v + ";";
    // append(): GCC 12 warns falsely (-Wrestrict) on "literal" + std::string&&.
    out.append("|").append(get_argument("s", "none")).append("|");
    out.append(get_argument("s", "none", false));
    for (const auto& f : files()) out.append("|file:").append(f.name).append(":").append(f.body);
    set_body(out);
  }
  void post() override { get(); }
};

class JsonBody : public WebMessageHandler {
 public:
  void post() override {
    std::string_view name;
    if (request().json()["name"].get(name)) throw HttpError(422, "name missing");
    set_body(std::string(name));
  }
};

class Teapot : public WebMessageHandler {
 public:
  void get() override { throw HttpError(418); }
  void write_error(int status) override {
    set_status(status);
    set_body("custom page for " + std::to_string(status));
  }
};

class Cookies : public WebMessageHandler {
 public:
  void get() override {
    auto action = get_argument("do");
    if (action == "set") {
      CookieOptions options;
      options.http_only = true;
      set_cookie("a", "1", options);
      set_secure_cookie("s", "secret value");
    } else if (action == "clear") {
      delete_cookies();
    } else {
      set_body(get_cookie("a", "-") + "," + get_secure_cookie("s").value_or("-"));
    }
  }
};

class Redirects : public WebMessageHandler {
 public:
  void get() override { redirect("/there", std::stoi(get_argument("code", "302"))); }
};

class RedirectsToNext : public WebMessageHandler {
 public:
  void get() override { redirect_local(get_argument("next", "/")); }
};

class Whoami : public WebMessageHandler {
 public:
  void get() override {
    set_body(std::string(request().remote_addr()) + " " + request().full_url() + " " +
             request().content_type());
  }
};

std::vector<RouteSpec> routes() {
  std::vector<RouteSpec> specs;
  specs.push_back(class_route<Echo>("^/echo$"));
  specs.push_back(class_route<JsonBody>("^/json$"));
  specs.push_back(class_route<Teapot>("^/teapot$"));
  specs.push_back(class_route<Cookies>("^/cookies$"));
  specs.push_back(class_route<Redirects>("^/redirect$"));
  specs.push_back(class_route<RedirectsToNext>("^/next$"));
  specs.push_back(class_route<Whoami>("^/whoami$"));
  return specs;
}

std::shared_ptr<HandlerSettings> with_secret() {
  auto s = std::make_shared<HandlerSettings>();
  s->cookie_signer =
      std::make_shared<CookieSigner>(std::vector<std::string>{"0123456789abcdef-secret"});
  return s;
}

const testing::Fields kForm{{"content-type", "application/x-www-form-urlencoded"}};
const testing::Fields kMultipart{{"content-type", "multipart/form-data; boundary=B"}};

TEST(WebHandler, ArgumentsMergeQueryAndUrlencodedBody) {
  TestClient client(routes());
  auto r = client.post("/echo?a=1&s=+x+", "b=2&a=3&e=", kForm);
  EXPECT_EQ(r.body, "a=1;s= x ;b=2;a=3;|x| x ");
}

TEST(WebHandler, MultipartFieldsAndFiles) {
  std::string body =
      "--B\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nv\r\n"
      "--B\r\nContent-Disposition: form-data; name=\"up\"; filename=\"a.txt\"\r\n\r\nDATA\r\n"
      "--B--\r\n";
  TestClient client(routes());
  EXPECT_EQ(client.post("/echo", body, kMultipart).body, "f=v;|none|none|file:up:DATA");
  EXPECT_EQ(client.post("/echo", "--B\r\nbroken", kMultipart).status, 400);
  // The kit's own multipart bodies read the same.
  EXPECT_EQ(client.post_multipart("/echo", {{"f", "v"}}, {{"up", "a.txt", "DATA"}}).body,
            "f=v;|none|none|file:up:DATA");
}

TEST(WebHandler, ControlCharactersAndOversizedBodiesAreRefused) {
  TestClient client(routes());
  EXPECT_EQ(client.get("/echo?x=a%00b").status, 400);
  EXPECT_EQ(client.get("/echo?x=a%09b").status, 200)
      << "a tab is whitespace, not a control character to refuse";
  auto small = std::make_shared<HandlerSettings>();
  small->max_body_bytes = 4;
  TestClient limited(routes(), small);
  EXPECT_EQ(limited.post("/echo", "a=12345", kForm).status, 413);
}

TEST(WebHandler, JsonBodyParsedOrRefused) {
  TestClient client(routes());
  EXPECT_EQ(client.post("/json", R"({"name":"ada"})").body, "ada");
  EXPECT_EQ(client.post("/json", R"({"name":)").status, 400);
  EXPECT_EQ(client.post("/json", R"({"x":1})").status, 422);
  EXPECT_EQ(client.post_json("/json", {{"name", "ada"}}).body, "ada");
}

TEST(WebHandler, WriteErrorOverrideAndAppErrorPage) {
  TestClient client(routes());
  auto r = client.get("/teapot");
  EXPECT_EQ(r.status, 418);
  EXPECT_EQ(r.body, "custom page for 418");
  auto s = std::make_shared<HandlerSettings>();
  s->error_page = [](WebMessageHandler& h, int status) {
    h.set_header("Content-Type", "text/html");
    h.set_body("<h1>" + std::to_string(status) + "</h1>");
  };
  TestClient paged(routes(), s);
  auto missing = paged.get("/nowhere");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.body, "<h1>404</h1>");
  auto not_allowed = paged.delete_("/echo");
  EXPECT_EQ(not_allowed.status, 405);
  EXPECT_EQ(not_allowed.body, "<h1>405</h1>");
  EXPECT_EQ(not_allowed.header("Allow"), "GET, HEAD, POST, OPTIONS");
}

TEST(WebHandler, CookiesAndSignedCookiesRoundTrip) {
  TestClient client(routes(), with_secret());
  auto set = client.get("/cookies?do=set");
  auto lines = set.header_values("Set-Cookie");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "a=1; Path=/; HttpOnly");
  auto signed_pair = lines[1].substr(0, lines[1].find(';'));
  // The jar sends both back.
  EXPECT_EQ(client.get("/cookies").body, "1,secret value");
  auto cookie = "a=1; " + signed_pair;
  EXPECT_EQ(client.get("/cookies", {{"cookie", cookie}}).body, "1,secret value");
  auto tampered = cookie;
  tampered.back() = tampered.back() == '0' ? '1' : '0';
  EXPECT_EQ(client.get("/cookies", {{"cookie", tampered}}).body, "1,-");
  // Two Cookie headers are both read.
  EXPECT_EQ(client.get("/cookies", {{"cookie", "x=y"}, {"cookie", signed_pair}}).body,
            "-,secret value");
  auto clear = client.get("/cookies?do=clear", {{"cookie", cookie}});
  auto cleared = clear.header_values("Set-Cookie");
  ASSERT_EQ(cleared.size(), 2u);
  EXPECT_EQ(cleared[0].rfind("a=; ", 0), 0u);
  EXPECT_NE(cleared[0].find("Max-Age=0"), std::string::npos);
  // Without a secret, secure cookies are a server error, not a silent no-op.
  TestClient no_secret(routes());
  EXPECT_EQ(no_secret.get("/cookies?do=set").status, 500);
}

TEST(WebHandler, Redirects) {
  TestClient client(routes());
  auto r = client.get("/redirect");
  EXPECT_EQ(r.status, 302);
  EXPECT_EQ(r.header("Location"), "/there");
  for (int code : {301, 303, 307, 308})
    EXPECT_EQ(client.get("/redirect?code=" + std::to_string(code)).status, code);
  EXPECT_EQ(client.get("/redirect?code=200").status, 500);
}

// A target from the client is followed only when every browser reads it as a
// path on this site; anything else is a 400, never a 500 or another host.
TEST(WebHandler, RedirectLocalRefusesOtherHosts) {
  TestClient client(routes());
  for (const char* ok : {"%2F", "%2Fa%2Fb%3Fx%3D1", "%2F%2509%2Fevil.com"}) {
    SCOPED_TRACE(ok);
    auto r = client.get(std::string("/next?next=") + ok);
    EXPECT_EQ(r.status, 302);
    EXPECT_EQ(r.header("Location"), url_decode(ok));
  }
  for (const char* bad :
       {"%2F%09%2Fevil.com", "%2F%0A%2Fevil.com", "%2F%0D%0ASet-Cookie:x=1", "%2F%2Fevil.com",
        "%2F%5Cevil.com", "%5C%5Cevil.com", "http%3A%2F%2Fevil.com", "evil.com", "%2F%20%2Fx",
        "%2F%7F", "%09%2F%2Fevil.com"}) {
    SCOPED_TRACE(bad);
    auto r = client.get(std::string("/next?next=") + bad);
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.header("Location"), "");
  }
  EXPECT_TRUE(is_local_path("/"));
  EXPECT_FALSE(is_local_path(""));
  EXPECT_FALSE(is_local_path("//"));
}

// File names follow the arguments' rule (no control characters), and "."
// and ".." are refused: they name no file and walk a path.
TEST(WebHandler, BadFileNamesAreRefused) {
  TestClient client(routes());
  auto upload = [&](const std::string& disposition) {
    const std::string body = "--B\r\nContent-Disposition: form-data; name=\"up\"; " + disposition +
                             "\r\n\r\nDATA\r\n--B--\r\n";
    return client.post("/echo", body, kMultipart);
  };
  EXPECT_EQ(upload("filename=\"a.txt\"").status, 200);
  EXPECT_EQ(upload("filename=\"..a.txt\"").status, 200);
  static constexpr char kNul[] = "filename=\"a\0b.txt\"";
  EXPECT_EQ(upload(std::string(kNul, sizeof kNul - 1)).status, 400);
  EXPECT_EQ(upload("filename*=UTF-8''a%00b.txt").status, 400);
  EXPECT_EQ(upload("filename*=UTF-8''a%0Ab.txt").status, 400);
  EXPECT_EQ(upload("filename=\"a/..\"").status, 400);
  EXPECT_EQ(upload("filename=\"..\"").status, 400);
  EXPECT_EQ(upload("filename=\"C:\\dir\\.\"").status, 400);
}

// What Request reads of Mongrel2's own keys (REMOTE_ADDR, URL_SCHEME) and of
// x-forwarded-for, which the kit's client sets for every request: on a
// hand-made Request.
TEST(WebHandler, RequestAddressingHelpers) {
  RouteTable t(routes());
  auto d = dispatch(t, make_request("GET", "/whoami", {},
                                    {{"x-forwarded-for", "10.1.2.3, 127.0.0.1"},
                                     {"host", "example.org:6767"},
                                     {"content-type", "Text/Plain; charset=utf-8"},
                                     {"URL_SCHEME", "https"}}));
  EXPECT_EQ(d.response.body, "10.1.2.3 https://example.org:6767/whoami text/plain");
  auto d2 = dispatch(
      t, make_request("GET", "/whoami", "q=1", {{"REMOTE_ADDR", "127.0.0.9"}, {"host", "h"}}));
  EXPECT_EQ(d2.response.body, "127.0.0.9 http://h/whoami?q=1 ");
}

}  // namespace
}  // namespace brubeck
